"""A Server-Sent Events parser (the WHATWG rules the API's stream follows), over lines of text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    event: str
    data: str
    id: str | None  # the id this message carried, if any (resume after it with Last-Event-ID)

    def json(self) -> dict[str, Any]:
        """The data as a JSON object; ``{}`` when it is not one."""
        try:
            data = json.loads(self.data)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def messages(lines: Iterable[str]) -> Iterator[Message]:
    """Messages in arrival order; comments (keep-alives) and ``retry:`` are skipped."""
    event, event_id = "", None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield Message(event or "message", "\n".join(data), event_id)
            event, data, event_id = "", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\x00" not in value:
            event_id = value
