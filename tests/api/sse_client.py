"""A small Server-Sent Events reader over a real HTTP connection (httpx), for the stream tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Message:
    event: str = "message"
    data: str = ""
    id: str | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


def messages(response: httpx.Response) -> Iterator[Message]:
    """Parse the wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""
    current = Message()
    for line in response.iter_lines():
        if line == "":
            if current.data or current.comments or current.id is not None or current.event != "message":
                yield current
            current = Message()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            current.comments.append(value)
        elif name == "data":
            current.data = f"{current.data}\n{value}" if current.data else value
        elif name in ("event", "id"):
            setattr(current, name, value)


def read_until(stream: Iterator[Message], stop: str, limit: int = 200) -> list[Message]:
    """Messages up to and including the first of event type ``stop`` (bounded, so a bug cannot hang)."""
    seen: list[Message] = []
    for message in stream:
        seen.append(message)
        if message.event == stop or len(seen) >= limit:
            break
    return seen
