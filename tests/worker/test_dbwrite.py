"""Worker writes wait out a locked or unreachable database instead of failing the job."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from jobstore.db import make_engine
from worker.dbwrite import is_transient, write_retrying


def test_a_write_waits_for_a_lock_held_elsewhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url, busy_timeout_ms=50)  # each try gives up fast; the retry loop waits
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a while
    release = threading.Timer(1.0, holder.rollback)
    release.start()

    write_retrying(engine, lambda s: s.exec(text("INSERT INTO t VALUES (1)")), give_up_after=30, what="test")  # type: ignore[call-overload]

    release.join()
    assert "database unavailable" in caplog.text  # it met the lock and waited it out
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    holder.close()
    engine.dispose()


def test_give_up_after_the_deadline(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", busy_timeout_ms=20)
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError):
        write_retrying(engine, lambda s: s.exec(text("SELECT 1")), give_up_after=0.5, what="test")  # type: ignore[call-overload]
    holder.rollback()
    holder.close()
    engine.dispose()


def test_only_connection_failures_are_transient() -> None:
    assert is_transient(OperationalError("stmt", {}, Exception("database is locked")))
    assert not is_transient(IntegrityError("stmt", {}, Exception("duplicate")))
    assert not is_transient(ValueError("nope"))
