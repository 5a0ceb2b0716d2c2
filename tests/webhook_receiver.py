"""A real webhook receiver for the notification tests: a threading ``http.server`` on 127.0.0.1.

``Receiver(port)`` records every POST (headers and body) and answers ``status`` with ``answer`` as
its body. ``free_port()`` names a port nobody listens on: a URL to it is a receiver that is down,
until a ``Receiver`` is started on that port.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


DOC = Path(__file__).resolve().parents[1] / "docs" / "notifications.md"
Verify = Callable[..., bool]


def documented_verify() -> Verify:
    """``verify(secret, signature_header, body, now=None)`` from docs/notifications.md, run as written."""
    section = DOC.read_text().split("## Verifying a notification", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/notifications.md lost its verification snippet"
    namespace: dict[str, object] = {}
    exec(compile(match.group(1), str(DOC), "exec"), namespace)
    verify = namespace["verify"]
    assert callable(verify)
    return verify


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Receiver:
    def __init__(self, port: int = 0, *, status: int = 200, answer: bytes = b"ok") -> None:
        self.received: list[Received] = []
        self.status = status
        self.answer = answer
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def posts(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
