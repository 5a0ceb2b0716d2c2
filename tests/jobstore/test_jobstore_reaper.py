from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, transaction_factory, write_transaction
from jobstore.errors import FencedOutError
from jobstore.events import EventKind
from jobstore.kinds import CommandKind
from jobstore.models import Attempt, Job
from jobstore.reaper import ReapReport, reap
from jobstore.records import CheckpointRow, EpochRow
from jobstore.settings import Settings
from jobstore.states import AttemptOutcome

Clock = Callable[[float], datetime]
Start = Callable[..., tuple[str, int]]


@pytest.fixture
def settings(tmp_path: object) -> Settings:
    return Settings(
        home=tmp_path, infra_retry_budget=2, redispatch_after_seconds=60, redispatch_max_seconds=200
    )


class Dispatcher:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, int]] = []
        self.fail = fail

    def __call__(self, job_id: str, attempt: int) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((job_id, attempt))


def run(engine: Engine, settings: Settings, now: datetime, dispatch: Dispatcher | None = None) -> ReapReport:
    return reap(transaction_factory(engine), now=now, settings=settings, dispatch=dispatch or Dispatcher())


def test_a_live_lease_is_left_alone(
    engine: Engine, settings: Settings, start_job: Start, at: Clock, load
) -> None:  # type: ignore[no-untyped-def]
    job_id, _ = start_job(now=at(0))
    report = run(engine, settings, at(29))
    assert report.counts() == ReapReport().counts()
    assert load(job_id).state == "running"


def test_expired_lease_is_interrupted_then_requeued(
    engine: Engine, settings: Settings, start_job: Start, at: Clock, load
) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job(now=at(0))
    with write_transaction(engine) as session:
        repo.record_epoch(session, job_id=job_id, attempt=attempt, row=EpochRow(epoch=1, stage=1, val_f1=0.6))
        repo.record_checkpoint(
            session,
            job_id=job_id,
            attempt=attempt,
            row=CheckpointRow(path="last.pt", kind="last", epoch=1, stage=1),
        )
    dispatch = Dispatcher()
    report = run(engine, settings, at(31), dispatch)
    job = load(job_id)
    assert (report.interrupted, report.requeued) == (1, 1)
    assert dispatch.sent == [(job_id, attempt + 1)] == report.dispatched
    assert (job.state, job.attempt, job.infra_retries) == ("queued", attempt + 1, 1)
    assert (job.resume_from["from"], job.resume_from["checkpoint"]) == ("last", "last.pt")
    with read_session(engine) as session:
        changes = repo.list_events(session, job_id=job_id, kinds=[EventKind.STATE_CHANGE])
        ended = session.get(Attempt, (job_id, attempt))
    assert [(e.from_state, e.to_state, e.actor) for e in changes[-2:]] == [
        ("running", "interrupted", "reaper"), ("interrupted", "queued", "reaper")
    ]  # fmt: skip
    assert changes[-2].reason.startswith("worker lost: lease expired at 2026-03-01T12:00:30+00:00")
    assert "last heartbeat at 2026-03-01T12:00:00+00:00" in changes[-2].reason
    assert ended is not None and ended.outcome == "lost"
    with (
        pytest.raises(FencedOutError),
        write_transaction(engine) as session,
    ):  # the lost worker, if it wakes up
        repo.record_epoch(session, job_id=job_id, attempt=attempt, row=EpochRow(epoch=2, stage=1))


def test_budget_exhausted_fails_the_job(
    engine: Engine, settings: Settings, start_job: Start, at: Clock, load
) -> None:  # type: ignore[no-untyped-def]
    job_id, attempt = start_job(now=at(0))
    clock = 0.0
    for retry in range(settings.infra_retry_budget):
        clock += 31
        run(engine, settings, at(clock))
        attempt += 1
        assert load(job_id).infra_retries == retry + 1
        start_job(load(job_id), now=at(clock))
    dispatch = Dispatcher()
    report = run(engine, settings, at(clock + 31), dispatch)
    job = load(job_id)
    assert (report.interrupted, report.failed, dispatch.sent) == (1, 1, [])
    assert job.state == "failed" and job.attempt == attempt
    assert job.state_reason.startswith("infrastructure retry budget exhausted (2 of 2")


@pytest.mark.parametrize(
    ("kind", "state"), [(CommandKind.CANCEL, "cancelled"), (CommandKind.PAUSE, "interrupted")]
)
def test_a_pending_stop_wins_over_a_requeue(
    engine: Engine,
    settings: Settings,
    start_job: Start,
    at: Clock,
    load,
    kind: CommandKind,
    state: str,  # type: ignore[no-untyped-def]
) -> None:
    job_id, _ = start_job(now=at(0))
    with write_transaction(engine) as session:
        repo.request_command(session, job_id=job_id, kind=kind, actor="op", reason="stop")
    dispatch = Dispatcher()
    run(engine, settings, at(31), dispatch)
    assert load(job_id).state == state and dispatch.sent == []


def test_lost_message_is_sent_again_with_backoff(
    engine: Engine, settings: Settings, new_job: Callable[..., Job], at: Clock, load
) -> None:  # type: ignore[no-untyped-def]
    job = new_job()  # dispatched at T0
    dispatch = Dispatcher()
    assert run(engine, settings, at(59), dispatch).redispatched == 0
    assert run(engine, settings, at(60), dispatch).redispatched == 1  # waited 60 s
    assert run(engine, settings, at(179), dispatch).redispatched == 0
    assert run(engine, settings, at(180), dispatch).redispatched == 1  # waited 120 s
    assert run(engine, settings, at(380), dispatch).redispatched == 1  # 240 s capped at 200 s
    assert dispatch.sent == [(job.id, 1)] * 3  # same attempt: claim lets one delivery through
    assert load(job.id).dispatch_count == 4
    with read_session(engine) as session:
        assert len(repo.list_events(session, job_id=job.id, kinds=[EventKind.REDISPATCHED])) == 3


def test_a_failed_send_is_retried_later(
    engine: Engine, settings: Settings, new_job: Callable[..., Job], at: Clock, load
) -> None:  # type: ignore[no-untyped-def]
    job = new_job()
    report = run(engine, settings, at(60), Dispatcher(fail=True))
    assert (report.redispatched, report.dispatch_errors) == (1, 1)
    assert load(job.id).state == "queued"
    assert run(engine, settings, at(180), Dispatcher()).dispatched == [(job.id, 1)]


def test_concurrent_reapers_act_once(
    engine: Engine,
    settings: Settings,
    start_job: Start,
    at: Clock,
    load,
    concurrently,  # type: ignore[no-untyped-def]
) -> None:
    job_id, attempt = start_job(now=at(0))
    dispatch = Dispatcher()
    reports = concurrently(*[partial(run, engine, settings, at(31), dispatch)] * 3)
    assert sum(r.interrupted for r in reports) == 1 and sum(r.errors for r in reports) == 0
    assert dispatch.sent == [(job_id, attempt + 1)]
    assert load(job_id).infra_retries == 1


def test_a_resume_lost_before_its_restore_is_retried_from_the_same_point(
    engine: Engine,
    settings: Settings,
    start_job: Start,
    at: Clock,
    load,  # type: ignore[no-untyped-def]
) -> None:
    job_id, attempt = start_job(now=at(0))
    with write_transaction(engine) as session:
        for path, kind, epoch in (("e2.pt", "epoch", 2), ("last.pt", "last", 5)):
            row = CheckpointRow(path=path, kind=kind, epoch=epoch, stage=1)
            repo.record_checkpoint(session, job_id=job_id, attempt=attempt, row=row)
        repo.finish_attempt(
            session, job_id=job_id, attempt=attempt, outcome=AttemptOutcome.PAUSED, reason="p"
        )
        _, resumed = repo.request_resume(
            session,
            repo.get_job(session, job_id),
            selector="epoch:2",
            actor="op",
            reason="back to 2",
            now=at(1),
        )
    start_job(load(job_id), now=at(2))  # claimed, then the worker dies before confirming its restore
    run(engine, settings, at(40))
    job = load(job_id)
    assert (job.state, job.attempt) == ("queued", resumed + 1)
    assert (job.resume_from["from"], job.resume_from["checkpoint"]) == ("epoch:2", "e2.pt")  # not last.pt


def _alive(engine: Engine, now: datetime, *workers: str, running: tuple[str, int] | None = None) -> None:
    """The workers' companions beat (each started an hour before ``now``), and ``running`` heartbeats."""
    with write_transaction(engine) as session:
        for name in workers:
            repo.beat_worker(session, name=name, pid=1, started_at=now - timedelta(hours=1), now=now)
        if running is not None:
            repo.heartbeat(session, job_id=running[0], attempt=running[1], lease_seconds=30, now=now)


def test_a_backlog_behind_a_busy_worker_is_not_resent(
    engine: Engine, settings: Settings, new_job: Callable[..., Job], start_job: Start, at: Clock
) -> None:
    running = start_job(now=at(0))  # claimed by w1, which trains for the whole test
    head = new_job(name="first in line", priority=1, now=at(0))
    for n in range(49):
        new_job(name=f"q{n}", now=at(0))
    dispatch = Dispatcher()
    for t in range(61, 1000, 15):  # a reaper pass every 15 s, long past the 60 s window
        _alive(engine, at(t), "w1", running=running)
        assert run(engine, settings, at(t), dispatch).redispatched <= 1
    assert {job_id for job_id, _ in dispatch.sent} == {head.id}  # only the job first in line
    assert len(dispatch.sent) <= 5  # 60 s, then doubling up to 200 s: 60, 180, 380, 580, 780


def test_a_moving_queue_resends_nothing(
    engine: Engine, settings: Settings, new_job: Callable[..., Job], start_job: Start, at: Clock
) -> None:
    for n in range(5):
        new_job(name=f"q{n}", now=at(0))
    running = start_job(new_job(name="claimed just now", priority=9, now=at(0)), now=at(50))
    _alive(engine, at(100), "w1", "w2", running=running)  # w2 idle, but a claim came 50 s ago
    assert run(engine, settings, at(100)).redispatched == 0


def test_a_stalled_queue_with_an_idle_worker_resends_every_message(
    engine: Engine, settings: Settings, new_job: Callable[..., Job], at: Clock, load
) -> None:  # type: ignore[no-untyped-def]
    jobs = [new_job(name=f"q{n}", now=at(0)) for n in range(3)]  # the broker restarted: messages lost
    _alive(engine, at(61), "w1")
    dispatch = Dispatcher()
    assert run(engine, settings, at(61), dispatch).redispatched == 3
    assert sorted(dispatch.sent) == sorted((job.id, 1) for job in jobs)
    assert run(engine, settings, at(62), dispatch).redispatched == 0  # each waits its backoff again
    assert load(jobs[0].id).dispatch_count == 2


def test_a_worker_younger_than_the_window_is_not_taken_for_idle(
    engine: Engine, settings: Settings, new_job: Callable[..., Job], at: Clock
) -> None:
    head = new_job(name="first in line", priority=1, now=at(0))
    for n in range(4):
        new_job(name=f"q{n}", now=at(0))
    with write_transaction(engine) as session:  # started 11 s ago: it may not have taken a message yet
        repo.beat_worker(session, name="w1", pid=1, started_at=at(50), now=at(61))
    dispatch = Dispatcher()
    assert run(engine, settings, at(61), dispatch).redispatched == 1
    assert dispatch.sent == [(head.id, 1)]
