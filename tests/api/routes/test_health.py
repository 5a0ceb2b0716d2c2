"""GET /healthz and /readyz: the process, the database at head, the broker."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings


def test_healthz_answers_while_the_process_runs(client: TestClient) -> None:
    response = client.get("/healthz")

    assert (response.status_code, response.json()["status"]) == (200, "ok")


def test_readyz_checks_database_and_broker(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


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
