"""The notification outbox: written with the change it tells, fanned out per URL, retried with a backoff."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.models import Job, Notification, NotificationDelivery
from jobstore.records import StageChange
from jobstore.repo.notifications import RetryPolicy, Scope, fan_out
from jobstore.states import JobState

Clock = Callable[[float], datetime]
HOOK = "https://hooks.example.org/ocec"
NOTIFY = {"urls": [HOOK], "secret": "job-secret-0123456789"}


def outbox(engine: Engine, job_id: str) -> list[Notification]:
    with read_session(engine) as session:
        query = select(Notification).where(Notification.job_id == job_id).order_by(col(Notification.seq))
        return list(session.exec(query).all())


class BoomError(Exception):
    pass


def test_a_state_change_writes_its_row_in_its_own_transaction(
    engine: Engine, new_job: Callable[..., Job]
) -> None:
    job = new_job()
    with pytest.raises(BoomError), write_transaction(engine) as session:
        repo.transition(session, job, JobState.CANCELLED, actor="op", reason="changed my mind")
        raise BoomError  # the change rolls back: so does its notification
    assert outbox(engine, job.id) == []
    with write_transaction(engine) as session:
        event = repo.transition(session, job, JobState.CANCELLED, actor="op", reason="changed my mind")
        seq = event.seq
    [row] = outbox(engine, job.id)
    assert (row.seq, row.kind, row.fanned_out) == (seq, "job.finished", False)
    assert row.payload["job"]["state"] == "cancelled"
    assert row.payload["event"]["reason"] == "changed my mind"


def test_a_new_stage_is_told_and_a_new_lr_within_it_is_not(
    engine: Engine, start_job: Callable[..., tuple[str, int]]
) -> None:
    job_id, attempt = start_job()  # queued -> running: told
    for before, after in ((1, 2), (2, 2)):  # a new stage: told; a new lr in stage 2: not
        change = StageChange(from_stage=before, to_stage=after, epoch=3, trigger="gate", reason="r")
        with write_transaction(engine) as session:
            repo.record_stage_change(session, job_id=job_id, attempt=attempt, change=change)
    kinds = [row.kind for row in outbox(engine, job_id)]
    assert kinds == ["job.state_changed", "job.stage_changed"]


def test_fan_out_gives_each_url_one_delivery_signed_by_its_owner(
    engine: Engine, new_job: Callable[..., Job], at: Clock
) -> None:
    job = new_job(notify=NOTIFY)
    with write_transaction(engine) as session:
        repo.transition(session, job, JobState.CANCELLED, actor="op", reason="r")
    server = ["https://ops.example.org/all", HOOK]  # HOOK is the job's too: one delivery, the job's
    with write_transaction(engine) as session:
        assert fan_out(session, server_urls=server, now=at(1)) == 1
    with write_transaction(engine) as session:
        assert fan_out(session, server_urls=server, now=at(2)) == 0  # nothing is fanned out twice
    with read_session(engine) as session:
        rows = session.exec(select(NotificationDelivery).order_by(col(NotificationDelivery.url))).all()
    assert [(r.url, r.scope, r.status, r.next_try_at) for r in rows] == [
        (HOOK, Scope.JOB, "pending", at(1)),
        ("https://ops.example.org/all", Scope.SERVER, "pending", at(1)),
    ]
    assert outbox(engine, job.id)[0].fanned_out


def test_a_notification_no_url_asks_for_is_not_kept(
    engine: Engine, new_job: Callable[..., Job], at: Clock
) -> None:
    told, untold = new_job(notify=NOTIFY), new_job()  # no server URLs: only the first has a receiver
    for job in (told, untold):
        with write_transaction(engine) as session:
            repo.transition(session, job, JobState.CANCELLED, actor="op", reason="r")
    with write_transaction(engine) as session:
        assert fan_out(session, server_urls=[], now=at(1)) == 2
    assert outbox(engine, untold.id) == [] and outbox(engine, told.id)[0].fanned_out
    with read_session(engine) as session:
        assert [r.job_id for r in session.exec(select(NotificationDelivery)).all()] == [told.id]


def test_fan_out_takes_the_oldest_notification_first(
    engine: Engine, new_job: Callable[..., Job], at: Clock
) -> None:
    """Deliveries go out in id order, so the fan-out's order is the receiver's: written out of order
    (as rows of several writers can land), they are still fanned out oldest first."""
    job = new_job(notify=NOTIFY)
    with write_transaction(engine) as session:
        for seq, kind in ((3, "job.awaiting_decision"), (1, "job.state_changed"), (2, "job.stage_changed")):
            session.add(Notification(job_id=job.id, seq=seq, kind=kind, payload={}, created_at=at(seq)))
    with write_transaction(engine) as session:
        assert fan_out(session, server_urls=[], now=at(4)) == 3
    with read_session(engine) as session:
        rows = session.exec(select(NotificationDelivery).order_by(col(NotificationDelivery.id))).all()
    assert [r.kind for r in rows] == ["job.state_changed", "job.stage_changed", "job.awaiting_decision"]


def test_the_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff_seconds=0.5, backoff_max_seconds=3.0, max_attempts=10)
    assert [policy.wait(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.wait(10_000) == 3.0
