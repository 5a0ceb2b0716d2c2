"""API fixtures: an app on the parametrized database (SQLite and PostgreSQL) with the real Redis as
its broker on a queue of its own, a TestClient, and a real uvicorn server on a free port.

Auth is on, as in production: ``client`` and ``http`` carry an operator key; ``make_key`` makes
more (``make_key("alice", Role.VIEWER).headers``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import ApiSettings
from jobstore.db import make_engine, write_transaction
from jobstore.repo import keys
from jobstore.repo.keys import Role
from tests.api.broker import QueueReader
from tests.live_api import serve_app

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


@dataclass(frozen=True)
class Key:
    """An API key made for a test: the secret, and how the API records its actions."""

    secret: str
    id: str
    name: str
    role: Role
    actor: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


KeyMaker = Callable[..., Key]


@pytest.fixture
def make_key(api_settings: ApiSettings) -> Iterator[KeyMaker]:
    engine = make_engine(api_settings.database_url)

    def make(name: str = "tester", role: Role = Role.OPERATOR) -> Key:
        with write_transaction(engine) as session:
            new = keys.create_key(session, name=name, role=role)
            record = new.record
            return Key(new.secret, record.id, record.name, role, keys.actor_label(record))

    yield make
    engine.dispose()


@pytest.fixture
def operator_key(make_key: KeyMaker) -> Key:
    return make_key("tester", Role.OPERATOR)


@pytest.fixture
def app(api_settings: ApiSettings) -> FastAPI:
    return create_app(api_settings)


@pytest.fixture
def client(app: FastAPI, operator_key: Key) -> Iterator[TestClient]:
    with TestClient(app, headers=operator_key.headers) as test_client:
        yield test_client


@pytest.fixture
def anonymous(client: TestClient) -> TestClient:
    """A client without credentials on ``client``'s app (and its running lifespan)."""
    return TestClient(client.app)


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
    with serve_app(app, grace_seconds=2) as base:
        yield base


@pytest.fixture
def http(live_server: str, operator_key: Key) -> Iterator[httpx.Client]:
    """An HTTP client of the live server with an operator key."""
    with httpx.Client(base_url=live_server, headers=operator_key.headers, timeout=10.0) as client:
        yield client


@pytest.fixture
def job_body() -> dict[str, object]:
    return {
        "name": "hq-finetune",
        "data_root": DATASET,
        "pretrain": PRETRAIN,
        "epochs": 10,
        "unfreeze_backbone_epoch": 4,
    }
