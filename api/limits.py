"""What a request body may be, route by route, and the NaN guard on JSON bodies.

Body caps (``body_limit``): a route that takes a JSON body gets a cap of its own (``JSON_LIMITS``,
at most ``OCEC_MAX_BODY_BYTES``), the upload routes take files up to ``OCEC_MAX_UPLOAD_BYTES``
(streamed to disk, never parsed as JSON), and every other request a small one. A job spec is a few
KB: small caps keep every JSON parse well under a millisecond, so nothing blocks the event loop.

NaN guard: JSON bodies with NaN, Infinity or numbers too large for a float are refused before any
route sees them: Python's ``json`` accepts the literals ``NaN``/``Infinity`` and turns ``1e999``
into ``inf``, and a model field that forgot ``allow_inf_nan=False`` would let them through. The
check parses in a worker thread and names at most ``MAX_LISTED_ERRORS`` fields (plus a count); it
also refuses a body of more than ``MAX_JSON_VALUES`` values, whose validation would be slow."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import MAX_LISTED_ERRORS, PROBLEM_JSON, FieldError, ProblemType, listed_errors
from api.route_info import RouteInfo, route_info
from api.security import problem_json

JSON_LIMIT = 64 << 10  # a job spec (POST /jobs, /resume, /fork) with room to spare
SMALL_JSON_LIMIT = 4 << 10  # an API key, a key's name and role
NO_BODY_LIMIT = 4 << 10  # routes that declare no body, unknown paths
JSON_LIMITS: Mapping[tuple[str, str], int] = {
    ("POST", "/session"): SMALL_JSON_LIMIT,
    ("POST", "/keys"): SMALL_JSON_LIMIT,
}
# A job spec holds about 40 values. Validating (and describing the mistakes of) thousands would
# take tens of ms on the event loop, so a body with more is refused here, off the loop.
MAX_JSON_VALUES = 1000
TOO_MANY_VALUES = "json_too_many_values"
NON_FINITE = "finite_number"
MESSAGE = "must be a finite number (NaN and infinities are refused)"


class _NonFinite:
    """Stands where the parser met a non-finite number, so its place can be named."""


def _constant(_name: str) -> _NonFinite:
    return _NonFinite()


def _float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite()


def body_limit(scope: Scope, max_json: int, uploads: Mapping[str, int]) -> int:
    """The most body bytes this request may send (``api.security.BodyLimitMiddleware`` enforces it)."""
    info = route_info(scope)
    if info is None:
        return min(NO_BODY_LIMIT, max_json)
    if scope["method"] == "POST" and info.path in uploads:  # GET /models reads no file
        return uploads[info.path]
    if info.takes_json:
        return min(JSON_LIMITS.get((scope["method"], info.path), JSON_LIMIT), max_json)
    return min(NO_BODY_LIMIT, max_json)


@dataclass
class JsonScan:
    """What the guard found in a JSON body: its non-finite numbers (the first named) and its size in
    values (every object, array, key's value and item counts one)."""

    named: list[str] = field(default_factory=list)
    non_finite: int = 0
    values: int = 0


def scan_json(body: bytes) -> JsonScan | None:
    """Scan a JSON body; ``None`` if it does not parse."""
    try:
        data = json.loads(body, parse_constant=_constant, parse_float=_float)
    except (ValueError, RecursionError):  # invalid JSON: the route's own parser answers it
        return None
    scan = JsonScan()
    _walk(data, (), scan)
    return scan


def _walk(value: Any, path: tuple[str, ...], scan: JsonScan) -> None:
    scan.values += 1
    if isinstance(value, _NonFinite):
        scan.non_finite += 1
        if len(scan.named) < MAX_LISTED_ERRORS:
            scan.named.append(".".join(path) or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, (*path, str(key)), scan)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*path, str(index)), scan)


def _is_json(scope: Scope) -> bool:
    content_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


class StrictJsonMiddleware:
    """Buffer the JSON body of a route that takes one (already bounded by the body limit) and refuse
    non-finite numbers with a 422 problem naming the fields; everything else passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _takes_json(route_info(scope)) or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        try:
            messages, body = await _read_all(receive)
        except HTTPException as exc:  # the body limit (outside us) cut the body off: 413
            await problem_json(exc.status_code, str(exc.detail), scope["path"])(scope, receive, send)
            return
        scan = await anyio.to_thread.run_sync(scan_json, body) if body else None
        refusal = _refusal(scan, scope["path"]) if scan else None
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)


def _takes_json(info: RouteInfo | None) -> bool:
    return info is not None and info.takes_json


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


def _refusal(scan: JsonScan, instance: str) -> JSONResponse | None:
    if scan.non_finite:
        errors = [FieldError(field=f, location="body", message=MESSAGE, type=NON_FINITE) for f in scan.named]
        return _problem(errors, scan.non_finite, instance)
    if scan.values > MAX_JSON_VALUES:
        message = f"holds {scan.values} JSON values; at most {MAX_JSON_VALUES} are accepted"
        error = FieldError(field="body", location="body", message=message, type=TOO_MANY_VALUES)
        return _problem([error], 1, instance)
    return None


def _problem(errors: list[FieldError], total: int, instance: str) -> JSONResponse:
    listed = listed_errors(errors, total)
    body = {
        "type": ProblemType.VALIDATION,
        "title": "Invalid request",
        "status": 422,
        "detail": listed["detail"],
        "instance": instance,
        "errors": [e.model_dump() for e in listed["errors"]],
    }
    if listed["errors_omitted"]:
        body["errors_omitted"] = listed["errors_omitted"]
    return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)
