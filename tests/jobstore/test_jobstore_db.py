from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text
from sqlmodel import select

from jobstore.db import dispose_after_fork, make_engine, read_connection, read_session, write_transaction
from jobstore.models import Job


def test_sqlite_file_and_directory_are_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'x.db'}"
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(text("select 1"))
    engine.dispose()
    assert (tmp_path / "deep" / "er" / "x.db").is_file()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url, busy_timeout_ms=1234)
    with read_session(engine) as session:
        pragma = lambda name: session.exec(text(f"PRAGMA {name}")).scalar_one()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("busy_timeout") == 1234
    engine.dispose()


def test_sqlite_write_transactions_serialise_read_then_write(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE: concurrent read-modify-write transactions wait; none fails, none is lost."""
    engine = make_engine(sqlite_url)
    with write_transaction(engine) as session:
        session.exec(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.exec(text("INSERT INTO counter VALUES (0)"))
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(10):
                with write_transaction(engine) as session:
                    n = session.exec(text("SELECT n FROM counter")).scalar_one()
                    session.exec(text("UPDATE counter SET n = :n"), params={"n": n + 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with read_session(engine) as session:
        assert session.exec(text("SELECT n FROM counter")).scalar_one() == 40
    assert errors == []
    engine.dispose()


def test_write_transaction_rolls_back_on_error(migrated_engine: Engine) -> None:
    with pytest.raises(RuntimeError), write_transaction(migrated_engine) as session:
        session.add(Job(name="doomed", created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
        session.flush()
        raise RuntimeError("boom")
    with read_session(migrated_engine) as session:
        assert session.exec(select(Job)).all() == []


def test_objects_stay_readable_after_commit(migrated_engine: Engine) -> None:
    with write_transaction(migrated_engine) as session:
        job = Job(name="kept")
        session.add(job)
    assert job.name == "kept" and job.id


def test_timestamps_are_utc_aware_on_both_backends(migrated_engine: Engine) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=9)))
    with write_transaction(migrated_engine) as session:
        job = Job(name="t", created_at=when, updated_at=when)
        session.add(job)
    with read_session(migrated_engine) as session:
        stored = session.get(Job, job.id)
        assert stored is not None
        assert stored.created_at == when
        assert stored.created_at.tzinfo == UTC


def test_naive_timestamps_are_refused(migrated_engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), write_transaction(migrated_engine) as session:
        session.add(Job(name="n", created_at=datetime(2026, 1, 1)))
        session.flush()


def test_json_scrubs_nan_and_infinity(migrated_engine: Engine) -> None:
    with write_transaction(migrated_engine) as session:
        job = Job(name="j", latest_metrics={"f1": math.nan, "best": -math.inf, "ok": [1.5, math.inf]})
        session.add(job)
    with read_session(migrated_engine) as session:
        stored = session.get(Job, job.id)
        assert stored is not None
        assert stored.latest_metrics == {"f1": None, "best": None, "ok": [1.5, None]}


def test_dispose_after_fork_keeps_the_engine_usable(migrated_engine: Engine) -> None:
    with read_session(migrated_engine) as session:
        session.exec(select(Job)).all()
    dispose_after_fork(migrated_engine)
    with read_session(migrated_engine) as session:
        assert session.exec(select(Job)).all() == []


def test_a_read_connection_sends_its_statements_alone_on_sqlite(migrated_engine: Engine) -> None:
    """The hot reads' connection: no BEGIN and no ROLLBACK around a statement on SQLite (each reads
    its own snapshot); a read session and a write transaction still begin theirs."""
    sent: list[str] = []
    listen = lambda *args: sent.append(args[2].split()[0].upper())  # noqa: E731  (the statement's verb)
    event.listen(migrated_engine, "before_cursor_execute", listen)
    with write_transaction(migrated_engine) as session:
        session.add(Job(name="seen", spec={}, epochs=1))
    written, sent[:] = list(sent), []
    with read_connection(migrated_engine) as connection:
        names = connection.execute(select(Job.name)).scalars().all()  # type: ignore[call-overload]
    event.remove(migrated_engine, "before_cursor_execute", listen)
    assert names == ["seen"]  # what was committed
    if migrated_engine.dialect.name == "sqlite":
        assert (written[0], sent) == ("BEGIN", ["SELECT"])
    else:
        assert sent == ["SELECT"]  # psycopg begins its transaction itself, not by a statement
