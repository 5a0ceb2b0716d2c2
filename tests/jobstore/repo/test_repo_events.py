from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.errors import FencedOutError
from jobstore.events import EventKind
from jobstore.models import Job
from jobstore.records import EpochRow


def test_seq_is_gap_free_under_concurrent_writers(
    engine: Engine, new_job: Callable[..., Job], concurrently: Callable[..., list[None]]
) -> None:
    job = new_job()  # its CREATED event is seq 1

    def write(worker: int) -> None:
        for i in range(8):
            with write_transaction(engine) as session:
                repo.append_event(
                    session, repo.get_job(session, job.id), EventKind.NOTE, reason=f"{worker}-{i}"
                )

    concurrently(*(partial(write, n) for n in range(4)))
    with read_session(engine) as session:
        events = repo.list_events(session, job_id=job.id, limit=1000)
        assert repo.get_job(session, job.id).event_seq == 33
    assert [event.seq for event in events] == list(range(1, 34))
    for worker in range(4):  # each writer's own events keep their order
        mine = [event.reason for event in events if event.reason.startswith(f"{worker}-")]
        assert mine == [f"{worker}-{i}" for i in range(8)]


def test_a_rolled_back_event_leaves_no_gap(engine: Engine, new_job: Callable[..., Job]) -> None:
    job = new_job()
    try:
        with write_transaction(engine) as session:
            repo.append_event(session, job, EventKind.NOTE, reason="lost")
            raise RuntimeError
    except RuntimeError:
        pass
    with write_transaction(engine) as session:
        event = repo.append_event(session, job, EventKind.NOTE, reason="kept")
    assert event.seq == 2


def test_list_events_after_limit_and_kinds(engine: Engine, new_job: Callable[..., Job]) -> None:
    job = new_job()
    with write_transaction(engine) as session:
        for i in range(5):
            repo.append_event(session, job, EventKind.NOTE, reason=str(i), evidence={"i": i})
    with read_session(engine) as session:
        assert [e.seq for e in repo.list_events(session, job_id=job.id, after_seq=2, limit=2)] == [3, 4]
        assert [e.kind for e in repo.list_events(session, job_id=job.id, kinds=[EventKind.CREATED])] == [
            "created"
        ]
        assert repo.list_events(session, job_id=job.id, after_seq=6) == []


def test_feed_replays_events_with_their_metric_rows(
    engine: Engine, start_job: Callable[..., tuple[str, int]]
) -> None:
    job_id, attempt = start_job()  # events 1 created, 2 running
    with write_transaction(engine) as session:
        repo.record_epoch(session, job_id=job_id, attempt=attempt, row=EpochRow(epoch=1, stage=1, val_f1=0.7))
        repo.record_epoch(
            session, job_id=job_id, attempt=attempt, row=EpochRow(epoch=2, stage=1, val_f1=0.75)
        )
    with read_session(engine) as session:
        items = repo.feed(session, job_id=job_id, after_seq=2)
        assert [(i.seq, i.event.kind) for i in items] == [(3, "epoch"), (4, "epoch")]
        assert [(i.metric.epoch, i.metric.val_f1) for i in items if i.metric] == [(1, 0.7), (2, 0.75)]
        replay = repo.feed(session, job_id=job_id, after_seq=3)
        assert [i.seq for i in replay] == [4] and replay[0].metric is not None
        assert all(i.metric is None for i in repo.feed(session, job_id=job_id, after_seq=0)[:2])


def test_worker_notes_are_fenced(engine: Engine, start_job: Callable[..., tuple[str, int]]) -> None:
    job_id, attempt = start_job()
    with write_transaction(engine) as session:
        note = repo.record_note(
            session, job_id=job_id, attempt=attempt, reason="disk 91% full", actor="worker:w1"
        )
    assert (note.kind, note.attempt) == ("note", attempt)
    with pytest.raises(FencedOutError), write_transaction(engine) as session:
        repo.record_note(session, job_id=job_id, attempt=attempt + 1, reason="zombie", actor="worker:old")
