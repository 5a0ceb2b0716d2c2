from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import IdempotencyConflictError, InvalidCursorError, JobNotFoundError, QuotaExceededError
from jobstore.events import EventKind
from jobstore.models import Job
from jobstore.spec import JobCreate
from jobstore.states import JobState

Clock = Callable[[float], datetime]


def body(**fields: object) -> JobCreate:
    return JobCreate.model_validate({"data_root": "dataset_B", "epochs": 10, **fields})


def test_create_queues_attempt_one_and_logs_it(engine: Engine, at: Clock) -> None:
    with write_transaction(engine) as session:
        result = repo.create_job(session, create=body(name="a", stage=2, epochs=12), owner="k1", now=at(0))
    job = result.job
    assert result.created
    assert (job.state, job.attempt, job.stage, job.epochs, job.owner) == ("queued", 1, 2, 12, "k1")
    assert job.spec["data_root"] == "dataset_B"
    assert job.queued_at == at(0) and job.dispatched_at == at(0) and job.dispatch_count == 1
    with read_session(engine) as session:
        [event] = repo.list_events(session, job_id=job.id)
    assert (event.seq, event.kind, event.to_state, event.actor) == (1, EventKind.CREATED, "queued", "k1")


def test_idempotency_key_per_owner(engine: Engine) -> None:
    with write_transaction(engine) as session:
        first = repo.create_job(session, create=body(name="x"), owner="k1", idempotency_key="abc")
    with write_transaction(engine) as session:
        again = repo.create_job(session, create=body(name="x"), owner="k1", idempotency_key="abc")
        other_owner = repo.create_job(session, create=body(name="x"), owner="k2", idempotency_key="abc")
    assert not again.created and again.job.id == first.job.id
    assert other_owner.created and other_owner.job.id != first.job.id
    with pytest.raises(IdempotencyConflictError) as caught, write_transaction(engine) as session:
        repo.create_job(session, create=body(name="x", lr=2e-4), owner="k1", idempotency_key="abc")
    assert caught.value.existing_id == first.job.id
    with read_session(engine) as session:
        assert len(session.exec(select(Job)).all()) == 2


def test_defaults_spelled_out_are_the_same_request(engine: Engine) -> None:
    with write_transaction(engine) as session:
        first = repo.create_job(session, create=body(), idempotency_key="k")
        again = repo.create_job(session, create=body(lr=1e-4, batch_size=256), idempotency_key="k")
    assert again.job.id == first.job.id and not again.created


def test_concurrent_requests_with_one_key_create_one_job(
    engine: Engine, concurrently: Callable[..., list[str]]
) -> None:
    def submit() -> str:
        with write_transaction(engine) as session:
            return repo.create_job(session, create=body(), owner="k", idempotency_key="same").job.id

    ids = concurrently(*[submit] * 4)
    assert len(ids) == 4 and len(set(ids)) == 1


def test_queued_jobs_quota(engine: Engine) -> None:
    with write_transaction(engine) as session:
        for _ in range(2):
            repo.create_job(session, create=body(), owner="k", max_queued=2)
    with pytest.raises(QuotaExceededError), write_transaction(engine) as session:
        repo.create_job(session, create=body(), owner="k", max_queued=2)
    with write_transaction(engine) as session:
        assert repo.create_job(session, create=body(), owner="other", max_queued=2).created


def test_get_job_unknown(engine: Engine) -> None:
    with pytest.raises(JobNotFoundError), read_session(engine) as s:
        repo.get_job(s, "nope")


def _all_pages(engine: Engine, limit: int, **filters: object) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        with read_session(engine) as session:
            page = repo.list_jobs(session, limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append([job.id for job in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_cursor_pagination_is_newest_first_and_stable_under_inserts(engine: Engine, at: Clock) -> None:
    with write_transaction(engine) as session:
        made = [repo.create_job(session, create=body(name=f"j{i}"), now=at(i // 2)).job.id for i in range(7)]
    expected = sorted(made, key=lambda job_id: (made.index(job_id) // 2, job_id), reverse=True)
    with read_session(engine) as session:
        first = repo.list_jobs(session, limit=3)
    assert [job.id for job in first.items] == expected[:3]
    with write_transaction(engine) as session:  # newer jobs arrive between page requests
        repo.create_job(session, create=body(name="late"), now=at(100))
    seen = [job.id for job in first.items]
    cursor = first.next_cursor
    while cursor:
        with read_session(engine) as session:
            page = repo.list_jobs(session, limit=3, cursor=cursor)
        seen += [job.id for job in page.items]
        cursor = page.next_cursor
    assert seen == expected


def test_list_filters(engine: Engine, start_job: Callable[..., tuple[str, int]]) -> None:
    with write_transaction(engine) as session:
        a = repo.create_job(session, create=body(name="HQ-finetune 100%"), owner="k1").job
        b = repo.create_job(session, create=body(name="other", stage=2), owner="k2").job
        c = repo.create_job(session, create=body(name="hq_two"), owner="k1", parent_job_id=a.id).job
    start_job(b)

    def ids(**filters: object) -> set[str]:
        return {job_id for page in _all_pages(engine, 10, **filters) for job_id in page}

    assert ids(states=[JobState.RUNNING]) == {b.id}
    assert ids(states=[JobState.QUEUED, JobState.RUNNING]) == {a.id, b.id, c.id}
    assert ids(stage=2) == {b.id}
    assert ids(name="hq") == {a.id, c.id}
    assert ids(name="100%") == {a.id}
    assert ids(name="_") == {c.id}  # literal, not a wildcard
    assert ids(owner="k1") == {a.id, c.id}
    assert ids(parent_job_id=a.id) == {c.id}


@pytest.mark.parametrize("cursor", ["garbage!", "bm90IGpzb24", "WyIyMDI2LTAxLTAxIiwgMV0"])
def test_invalid_cursor(engine: Engine, cursor: str) -> None:
    with pytest.raises(InvalidCursorError), read_session(engine) as session:
        repo.list_jobs(session, cursor=cursor)


def test_queue_position_priority_then_age(
    engine: Engine, at: Clock, start_job: Callable[..., tuple[str, int]]
) -> None:
    with write_transaction(engine) as session:
        old_low = repo.create_job(session, create=body(priority=0), now=at(0)).job
        new_high = repo.create_job(session, create=body(priority=5), now=at(10)).job
        new_low = repo.create_job(session, create=body(priority=0), now=at(20)).job
        running = repo.create_job(session, create=body(priority=9), now=at(30)).job
    start_job(running)
    with read_session(engine) as session:
        positions = [
            repo.queue_position(session, repo.get_job(session, j.id)) for j in (old_low, new_high, new_low)
        ]
        assert repo.queue_position(session, repo.get_job(session, running.id)) is None
    assert positions == [2, 1, 3]
