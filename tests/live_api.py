"""The API under a real uvicorn, in a thread of the test process, on a free port.

One helper for every test that needs real HTTP against an in-process app (the API tests'
``live_server``, the steering and dashboard stacks, uploads, the client and benchmark tests).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from api.main import create_app
from api.settings import ApiSettings

START_TIMEOUT_S = 20.0


@contextmanager
def serve_app(app: FastAPI, grace_seconds: float = 1) -> Iterator[str]:
    """Serve ``app``; yields its base URL and stops the server (and closes the port) after."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=grace_seconds)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        _wait_until_up(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def serve(settings: ApiSettings) -> Iterator[str]:
    """A fresh app built from ``settings``, served as above."""
    with serve_app(create_app(settings)) as base:
        yield base


def _wait_until_up(base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"uvicorn did not start at {base}")
