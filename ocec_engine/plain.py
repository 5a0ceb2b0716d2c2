"""Plain data (str/int/float/bool/None/list/dict) from the engine's records: what a
``weights_only`` checkpoint can hold and JSON can carry (the worker stores it as such)."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any


def plain(value: Any) -> Any:
    """``value`` with dataclasses turned into dicts, enums into their strings, tuples into lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
