"""``ocec-jobs migrate`` as a process, as docker-compose runs it: SQLite under a home, PostgreSQL by URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jobstore.migrate import check_models_match, current_revision, head_revision

SETTINGS_ENV = ("DATABASE_URL", "OCEC_DATABASE_URL", "OCEC_HOME")


def migrate(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV} | env
    command = [sys.executable, "-m", "ocec_jobs.cli.main", "migrate", *argv]
    return subprocess.run(command, env=clean, capture_output=True, text=True, timeout=120, check=False)


def test_sqlite_home_is_created_upgraded_and_reported(tmp_path: Path) -> None:
    home = tmp_path / "new-home"
    url = f"sqlite:///{home / 'ocec.db'}"

    check_before = migrate("--check", OCEC_HOME=str(home))
    assert not (home / "ocec.db").exists(), "--check changes nothing"
    first = migrate(OCEC_HOME=str(home))
    second = migrate("--home", str(home))
    check_after = migrate("--check", "--home", str(home))

    head = head_revision()
    assert check_before.returncode == 1 and "NOT at head" in check_before.stdout
    assert first.returncode == 0, first.stderr
    assert f"revision {head} (head; upgraded from (empty))" in first.stdout
    assert str(home / "ocec.db") in first.stdout
    assert current_revision(url) == head
    check_models_match(url)
    assert second.returncode == 0 and "already at head" in second.stdout
    assert check_after.returncode == 0 and "at head" in check_after.stdout


@pytest.mark.postgres
def test_postgresql_by_database_url(pg_database_factory: Callable[[], str], pg_url: str) -> None:
    empty = pg_database_factory()

    fresh = migrate(DATABASE_URL=empty)
    again = migrate(DATABASE_URL=pg_url)  # the session database, already at head
    flag = migrate("--database-url", empty, "--check")

    assert fresh.returncode == 0, fresh.stderr
    assert f"revision {head_revision()} (head; upgraded from (empty))" in fresh.stdout
    assert "postgresql+psycopg://postgres@127.0.0.1" in fresh.stdout
    assert current_revision(empty) == head_revision()
    check_models_match(empty)
    assert again.returncode == 0 and "already at head" in again.stdout
    assert flag.returncode == 0


def test_an_unreachable_database_is_one_line_and_exit_2() -> None:
    done = migrate(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("ocec-jobs migrate: OperationalError:")
    assert len(done.stderr.strip().splitlines()) == 1
