"""JSON bodies with NaN, Infinity or numbers too large for a float are refused before any route
sees them: Python's ``json`` accepts the literals ``NaN``/``Infinity`` and turns ``1e999`` into
``inf``, and a model field that forgot ``allow_inf_nan=False`` would let them through."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, FieldError, ProblemType
from api.security import problem_json

NON_FINITE = "finite_number"
MESSAGE = "must be a finite number (NaN and infinities are refused)"


class _NonFinite:
    """Stands where the parser met a non-finite number, so its place can be named."""


def _constant(_name: str) -> _NonFinite:
    return _NonFinite()


def _float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite()


def non_finite_fields(body: bytes) -> list[str] | None:
    """Dotted paths of the non-finite numbers in a JSON body; ``None`` if it does not parse."""
    try:
        data = json.loads(body, parse_constant=_constant, parse_float=_float)
    except (ValueError, RecursionError):  # invalid JSON: the route's own parser answers it
        return None
    found: list[str] = []
    _walk(data, (), found)
    return found


def _walk(value: Any, path: tuple[str, ...], found: list[str]) -> None:
    if isinstance(value, _NonFinite):
        found.append(".".join(path) or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, (*path, str(key)), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*path, str(index)), found)


def _is_json(scope: Scope) -> bool:
    content_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


class StrictJsonMiddleware:
    """Buffer JSON request bodies (already bounded by the body limit) and refuse non-finite numbers
    with a 422 problem naming each field; everything else passes through unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        try:
            messages, body = await _read_all(receive)
        except HTTPException as exc:  # the body limit (outside us) cut the body off: 413
            await problem_json(exc.status_code, str(exc.detail), scope["path"])(scope, receive, send)
            return
        fields = non_finite_fields(body) if body else None
        if fields:
            await _refuse(fields, scope["path"])(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)


async def _read_all(receive: Receive) -> tuple[list[Message], bytes]:
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _refuse(fields: list[str], instance: str) -> JSONResponse:
    errors = [FieldError(field=f, location="body", message=MESSAGE, type=NON_FINITE) for f in fields]
    body = {
        "type": ProblemType.VALIDATION,
        "title": "Invalid request",
        "status": 422,
        "detail": "; ".join(f"{f}: {MESSAGE}" for f in fields),
        "instance": instance,
        "errors": [e.model_dump() for e in errors],
    }
    return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)
