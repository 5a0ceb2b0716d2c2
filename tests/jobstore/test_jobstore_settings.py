from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from jobstore.settings import Settings, get_settings, normalize_database_url


def test_defaults_live_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path}/ocec.db"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path}/broker.db"
    assert settings.runs_root == tmp_path / "runs"
    assert settings.data_root == tmp_path / "data"
    assert settings.queue == "gpu"
    assert settings.infra_retry_budget == 3
    assert settings.worker_lost_within_seconds <= 60


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OCEC_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/ocec")
    monkeypatch.setenv("OCEC_BROKER_URL", "sqla+sqlite:///x.db")
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/1")
    monkeypatch.setenv("OCEC_LEASE_SECONDS", "40")
    monkeypatch.setenv("OCEC_DATA_ROOT", str(tmp_path / "datasets"))
    settings = Settings()
    assert settings.home == tmp_path
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/ocec"
    assert settings.broker_url == "redis://r:6379/1"  # REDIS_URL wins over OCEC_BROKER_URL
    assert settings.lease_seconds == 40
    assert settings.data_root == tmp_path / "datasets"
    assert settings.model_root == tmp_path / "models"


def test_broker_falls_back_to_ocec_broker_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("OCEC_BROKER_URL", "redis://other:6379/0")
    assert Settings().broker_url == "redis://other:6379/0"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://h/db", "postgresql+psycopg://h/db"),
        ("postgresql://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg2://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_normalize_database_url(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"heartbeat_seconds": 20, "lease_seconds": 30},  # one late beat would lose the lease
        {"lease_seconds": 0},
        {"infra_retry_budget": -1},
        {"redispatch_after_seconds": 100, "redispatch_max_seconds": 50},
        {"queue": "has space"},
        {"default_page_size": 600, "max_page_size": 500},
    ],
)
def test_bounds(bad: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(home=tmp_path, **bad)  # type: ignore[arg-type]


def test_get_settings_is_cached() -> None:
    assert get_settings() is get_settings()
