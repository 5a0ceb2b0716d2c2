"""Authenticate before anything reads the body: a keyless request to a route that needs a key is
answered 401 (403 for a role too low) with its body unread, so a stranger cannot make the server
read, buffer or parse anything. The actor found is kept on the request; ``get_actor`` reuses it."""

from __future__ import annotations

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.identity import authenticate
from api.errors import ApiError, api_error_handler, internal_error_handler
from api.route_info import route_info
from api.security import closing


class AuthGateMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = route_info(scope) if scope["type"] == "http" else None
        if info is None or not info.needs_key:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await anyio.to_thread.run_sync(authenticate, request)  # a key look-up: blocking
        except ApiError as exc:
            response = await api_error_handler(request, exc)
        except Exception as exc:  # the database is down: a problem, like any route's 500
            response = await internal_error_handler(request, exc)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, closing(send) if has_body(scope) else send)


def has_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
