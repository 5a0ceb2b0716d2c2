"""Which training function a worker runs: ``ocec_engine.train`` unless ``OCEC_ENGINE`` names another.

``OCEC_ENGINE="package.module:function"`` plugs in any callable with the engine's signature
``(TrainConfig, TrainingHooks) -> TrainResult`` — the service tests use a fast torch-free fake engine
this way. The module is imported lazily, inside the pool child, so the worker parent never imports
torch or touches CUDA.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

ENGINE_ENV = "OCEC_ENGINE"
DEFAULT_ENGINE = "ocec_engine:train"

EngineFn = Callable[[Any, Any], Any]  # (TrainConfig, TrainingHooks) -> TrainResult


class EngineEntryError(ValueError):
    """The engine reference is malformed or does not name a callable."""


def engine_ref() -> str:
    """The configured engine reference, ``module:function``."""
    return os.environ.get(ENGINE_ENV, "").strip() or DEFAULT_ENGINE


def resolve_engine(ref: str | None = None) -> EngineFn:
    """Import and return the engine function named by ``ref`` (default: the configured one)."""
    ref = ref or engine_ref()
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise EngineEntryError(f"{ENGINE_ENV}={ref!r}: expected 'package.module:function'")
    module = importlib.import_module(module_name)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise EngineEntryError(f"{ENGINE_ENV}={ref!r}: {module_name} has no callable {attr!r}")
    return fn  # type: ignore[no-any-return]
