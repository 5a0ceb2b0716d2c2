from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import product

import pytest
from sqlalchemy import Engine, update

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.events import EventKind
from jobstore.models import Job
from jobstore.states import TRANSITIONS, IllegalTransitionError, JobState

Clock = Callable[[float], datetime]


def _force_state(engine: Engine, job_id: str, state: JobState) -> None:
    with write_transaction(engine) as session:
        session.exec(update(Job).where(Job.id == job_id).values(state=state.value))  # type: ignore[call-overload]


def test_every_pair_follows_the_table(engine: Engine, new_job: Callable[..., Job]) -> None:
    job = new_job()
    for current, target in product(JobState, JobState):
        _force_state(engine, job.id, current)
        with read_session(engine) as session:
            before = repo.get_job(session, job.id).event_seq
        try:
            with write_transaction(engine) as session:
                repo.transition(session, repo.get_job(session, job.id), target, actor="t", reason="r")
            allowed = True
        except IllegalTransitionError as exc:
            allowed = False
            assert (exc.current, exc.target) == (current, target)
        assert allowed == (target in TRANSITIONS[current]), (current, target)
        with read_session(engine) as session:
            after = repo.get_job(session, job.id)
        assert after.state == (target if allowed else current)
        assert after.event_seq == before + (1 if allowed else 0)  # a refused change writes nothing


def test_timestamps_and_event(engine: Engine, new_job: Callable[..., Job], at: Clock) -> None:
    job = new_job()
    with write_transaction(engine) as session:
        repo.transition(session, job, JobState.RUNNING, actor="w", reason="go", now=at(5))
        job = repo.get_job(session, job.id)
        job.lease_owner, job.lease_expires_at = "w", at(35)
        repo.transition(session, job, JobState.FAILED, actor="w", reason="bad data", now=at(9))
    with read_session(engine) as session:
        job = repo.get_job(session, job.id)
        events = repo.list_events(session, job_id=job.id, kinds=[EventKind.STATE_CHANGE])
    assert (job.started_at, job.finished_at, job.updated_at) == (at(5), at(9), at(9))
    assert (job.state_reason, job.lease_owner, job.lease_expires_at) == ("bad data", None, None)
    assert [(e.from_state, e.to_state, e.actor, e.reason) for e in events] == [
        ("queued", "running", "w", "go"),
        ("running", "failed", "w", "bad data"),
    ]
    with write_transaction(engine) as session:  # back from a terminal state: finished_at cleared
        repo.transition(session, job, JobState.QUEUED, actor="op", reason="retry", now=at(20))
    with read_session(engine) as session:
        job = repo.get_job(session, job.id)
    assert (job.finished_at, job.queued_at, job.started_at) == (None, at(20), at(5))


def test_a_stale_copy_is_checked_against_the_committed_state(
    engine: Engine, new_job: Callable[..., Job]
) -> None:
    stale = new_job()  # state queued in this copy
    with write_transaction(engine) as session:
        repo.transition(session, repo.get_job(session, stale.id), JobState.CANCELLED, actor="op", reason="no")
    with pytest.raises(IllegalTransitionError) as caught, write_transaction(engine) as session:
        repo.transition(session, stale, JobState.RUNNING, actor="w", reason="late claim")
    assert caught.value.current == JobState.CANCELLED


def test_requeue_bumps_the_attempt(
    engine: Engine, start_job: Callable[..., tuple[str, int]], at: Clock
) -> None:
    job_id, attempt = start_job()
    with write_transaction(engine) as session:
        new = repo.requeue(
            session,
            repo.get_job(session, job_id),
            resume_from={"from": "last"},
            actor="a",
            reason="r",
            now=at(7),
        )
    with read_session(engine) as session:
        job = repo.get_job(session, job_id)
    assert new == attempt + 1 == job.attempt
    assert (job.state, job.resume_from, job.dispatched_at, job.dispatch_count) == (
        "queued",
        {"from": "last"},
        at(7),
        1,
    )
