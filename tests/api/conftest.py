"""API fixtures: an app on the parametrized database (SQLite and PostgreSQL) with the real Redis as
its broker on a queue of its own, a TestClient, and a real uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import ApiSettings
from tests.api.broker import QueueReader

DATASET = "dataset_B"
PRETRAIN = "ocec_A_best.pt"


@pytest.fixture
def api_settings(db_url: str, redis_url: str, unique_queue: str, tmp_path: Path) -> Iterator[ApiSettings]:
    settings = ApiSettings(
        home=tmp_path / "home",
        database_url=db_url,
        broker_url=redis_url,
        queue=unique_queue,
        stream_poll_seconds=0.05,
        stream_keepalive_seconds=0.2,
        max_page_size=50,
        default_page_size=20,
    )
    (settings.data_root / DATASET / "train").mkdir(parents=True)
    settings.model_root.mkdir(parents=True)
    (settings.model_root / PRETRAIN).write_bytes(b"not really a checkpoint")
    settings.runs_root.mkdir(parents=True)
    yield settings
    forget_queue(redis_url, unique_queue)


def forget_queue(redis_url: str, queue: str) -> None:
    """Delete this test's queue and its kombu binding (only those keys: never FLUSHDB a shared Redis)."""
    client = redis.Redis.from_url(redis_url)
    client.delete(queue, f"_kombu.binding.{queue}")
    client.close()


@pytest.fixture
def app(api_settings: ApiSettings) -> FastAPI:
    return create_app(api_settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def engine(client: TestClient) -> Engine:
    """The app's own engine (tests write through it to play the worker)."""
    resources = client.app.state.resources  # type: ignore[attr-defined]
    return resources.engine  # type: ignore[no-any-return]


@pytest.fixture
def queue(api_settings: ApiSettings) -> Iterator[QueueReader]:
    reader = QueueReader(api_settings.broker_url, api_settings.queue)
    yield reader
    reader.close()


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """A real uvicorn server in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    _wait_until_up(base)
    yield base
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _wait_until_up(base: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"uvicorn did not start at {base}")


@pytest.fixture
def job_body() -> dict[str, object]:
    return {
        "name": "hq-finetune",
        "data_root": DATASET,
        "pretrain": PRETRAIN,
        "epochs": 10,
        "unfreeze_backbone_epoch": 4,
    }
