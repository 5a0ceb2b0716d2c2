"""HEAD on every read: answered as the GET of the same URL would be, headers only.

FastAPI routes match only the methods they declare (Starlette adds HEAD to its own routes, FastAPI
does not), so HEAD was a 405 although HEAD is a read (``api.auth.identity.READ_METHODS``). The app
sees a GET; the client gets its status and headers (``Content-Length`` included) and no body. A
streaming answer (the SSE feed) is stopped after its headers instead of running on unseen.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _HeadAnsweredError(Exception):
    """Raised into a streaming response once its headers are sent: nobody reads the rest."""


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def send_headers_only(message: Message) -> None:
            nonlocal answered
            if message["type"] != "http.response.body":
                await send(message)
                return
            if not answered:
                answered = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                raise _HeadAnsweredError

        try:
            await self.app({**scope, "method": "GET"}, receive, send_headers_only)
        except* _HeadAnsweredError:
            pass
