"""GET /healthz and /readyz: the process, the database at head, the broker."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import ApiSettings
from jobstore.db import write_transaction
from jobstore.repo.workers import beat_worker, mark_stopped


def test_healthz_answers_while_the_process_runs(client: TestClient) -> None:
    response = client.get("/healthz")

    assert (response.status_code, response.json()["status"]) == (200, "ok")


def test_readyz_checks_database_and_broker_and_says_no_worker_lives(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, "jobs are still accepted: they wait for a worker"
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"] == {"database": "ok", "broker": "ok", "workers": "no live worker: queued jobs wait"}


def test_readyz_names_live_and_lost_workers(client: TestClient, engine: Engine) -> None:
    now = datetime.now(UTC)
    with write_transaction(engine) as session:
        beat_worker(session, name="gpu0@a", pid=11, now=now - timedelta(minutes=5))  # stopped beating
        beat_worker(session, name="gpu1@a", pid=12, now=now)
        mark_stopped(session, name="gpu1@a", reason="stopped", now=now)
    lost = client.get("/readyz").json()
    with write_transaction(engine) as session:
        beat_worker(session, name="gpu2@a", pid=13)

    assert lost["status"] == "degraded"
    assert re.fullmatch(  # the seconds are counted when /readyz answers: a loaded box adds some
        r"no live worker: queued jobs wait; worker gpu1@a \(pid 12\) stopped \d s ago: stopped; "
        r"worker gpu0@a \(pid 11\) last seen 3\d\d s ago",
        lost["checks"]["workers"],
    )
    assert client.get("/readyz").json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "workers": "ok"},
    }


def test_readyz_is_503_when_the_broker_is_unreachable(api_settings: ApiSettings) -> None:
    settings = api_settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})

    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["checks"]["database"] == "ok"
    assert problem["checks"]["broker"].startswith("unreachable")
    assert problem["status"] == 503


def test_readyz_is_503_when_the_schema_is_not_at_head(
    api_settings: ApiSettings, sqlite_url: str, tmp_path: Path
) -> None:
    settings = api_settings.model_copy(update={"database_url": sqlite_url})

    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert "head" in response.json()["checks"]["database"]
