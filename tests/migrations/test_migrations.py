"""Alembic on both backends: upgrade head, models == migrations, downgrade base, concurrent upgrades."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect

from jobstore.db import make_engine
from jobstore.migrate import (
    check_models_match,
    current_revision,
    downgrade,
    head_revision,
    is_at_head,
    schema_diff,
    upgrade_to_head,
)
from jobstore.models import metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    factory: Callable[[], str] = request.getfixturevalue("pg_database_factory")
    return factory()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_creates_every_table_and_matches_the_models(empty_url: str) -> None:
    assert current_revision(empty_url) is None
    upgrade_to_head(empty_url)
    assert current_revision(empty_url) == head_revision()
    assert is_at_head(empty_url)
    assert set(metadata.tables) <= _tables(empty_url)
    assert schema_diff(empty_url) == []
    check_models_match(empty_url)


def test_downgrade_base_removes_everything_and_upgrade_again_works(empty_url: str) -> None:
    upgrade_to_head(empty_url)
    downgrade(empty_url, "base")
    assert current_revision(empty_url) is None
    assert _tables(empty_url) - {"alembic_version"} == set()
    upgrade_to_head(empty_url)
    assert is_at_head(empty_url)


def test_concurrent_upgrades_take_turns(empty_url: str) -> None:
    """``ocec-jobs up`` starts the API and a worker together; both migrate at start."""
    code = f"from jobstore.migrate import upgrade_to_head; upgrade_to_head({empty_url!r})"
    processes = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE) for _ in range(3)
    ]
    results = [
        (process.wait(timeout=120), process.stderr.read() if process.stderr else b"") for process in processes
    ]
    assert [rc for rc, _ in results] == [0, 0, 0], results
    assert is_at_head(empty_url)


def test_threads_of_one_process_take_turns(sqlite_url: str) -> None:
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            upgrade_to_head(sqlite_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert is_at_head(sqlite_url)


def test_alembic_command_line_upgrade_and_check(empty_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (["upgrade", "head"], ["check"]):
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={empty_url}", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert is_at_head(empty_url)
