"""Response hardening: security headers on every answer, a CSP on HTML pages, CORS closed by default."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from http import HTTPStatus

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, ProblemType

# Our own pages (the dashboard) load nothing from elsewhere.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Anything else (JSON, files, streams) is data: a browser that opens it directly runs nothing.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
STATIC_PREFIX = "/static/"  # the dashboard's assets may be cached; nothing else is
HSTS = "max-age=31536000"
TOO_LARGE = "request body too large"
BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def page_csp(script_hashes: Sequence[str] = ()) -> str:
    """``PAGE_CSP`` that also allows these inline scripts by hash (``'sha256-…'``): /docs's bootstrap."""
    return PAGE_CSP.replace("script-src 'self'", " ".join(["script-src 'self'", *script_hashes]), 1)


class SecurityHeadersMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming responses pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASE_HEADERS.items():
                    headers.setdefault(name, value)
                html = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("content-security-policy", PAGE_CSP if html else DATA_CSP)
                if not path.startswith(STATIC_PREFIX):  # answers hold job data or credentials
                    headers.setdefault("cache-control", "no-store")
                if https:
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuse request bodies over the request's limit (``limit_of``: per route) with a 413 problem.

    Starlette's own limiter (FastAPI's ``max_body_size``) answers a too-long Content-Length in
    plain text, overriding any handler; here a declared length is refused before the app runs and
    a chunked body is cut off inside it, where the problem-details handlers answer. Either way the
    rest of the body is left unread and the connection closed after the answer.
    """

    def __init__(self, app: ASGIApp, limit_of: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await problem_json(413, TOO_LARGE, scope["path"])(scope, receive, closing(send))
            return
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, TOO_LARGE)
            return message

        async def send_closing_if_cut(message: Message) -> None:
            await (closing(send) if received > limit else send)(message)

        await self.app(scope, receive_limited, send_closing_if_cut)


def closing(send: Send) -> Send:
    """``send`` that asks the server to close the connection after this answer: the request's body
    was left unread, and the server would otherwise read and discard all of it."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message)["connection"] = "close"
        await send(message)

    return send_closing


def install(app: FastAPI, cors_origins: Sequence[str]) -> None:
    app.add_middleware(SecurityHeadersMiddleware)
    if cors_origins:  # closed unless settings name the origins allowed
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "Last-Event-ID",
                "X-CSRF-Token",
            ],
            expose_headers=["Location"],
        )


def problem_json(status: int, detail: str, instance: str) -> JSONResponse:
    """A problem response built without a request (middleware answers before routing)."""
    body = {"type": ProblemType.HTTP, "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return JSONResponse(body | {"instance": instance}, status_code=status, media_type=PROBLEM_JSON)
