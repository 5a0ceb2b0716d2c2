"""The evaluations' reaper pass on SQLite and PostgreSQL: a lost run is re-queued as the next attempt
(its old run fenced out) or failed past the budget naming the lost workers, a stopped node counts as
lost before its lease runs out, an unclaimed message is sent again with backoff, and the claim lets
exactly one of several deliveries through."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine

from jobstore.db import read_session, transaction_factory, write_transaction
from jobstore.evaluation_reaper import EvaluationReapReport, reap_evaluations
from jobstore.models import Evaluation
from jobstore.repo import evaluations as repo
from jobstore.repo.evaluations import EvaluationFencedError, ModelRoot, NewEvaluation
from jobstore.repo.workers import beat_worker, mark_stopped
from jobstore.settings import Settings

Clock = Callable[[float], datetime]
LEASE = 30.0


@pytest.fixture
def settings(tmp_path: object) -> Settings:
    return Settings(
        home=tmp_path, infra_retry_budget=1, redispatch_after_seconds=60, redispatch_max_seconds=200
    )


class Sender:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail

    def __call__(self, evaluation_id: str) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append(evaluation_id)


def run(
    engine: Engine, settings: Settings, now: datetime, send: Sender | None = None
) -> EvaluationReapReport:
    sessions = transaction_factory(engine)
    return reap_evaluations(sessions, now=now, settings=settings, send=send or Sender())


def create(engine: Engine, now: datetime) -> str:
    new = NewEvaluation(
        name="e", owner="", source={}, model_root=ModelRoot.MODEL, model_path="m.pt", data_path="d",
        split="all", threshold_rule="f1", threshold_target=None, top_k=4,
    )  # fmt: skip
    with write_transaction(engine) as session:
        return repo.create_evaluation(session, new=new, now=now).id


def claim(
    engine: Engine, evaluation_id: str, now: datetime, worker: str = "w1@host", pid: int = 11
) -> int | None:
    with write_transaction(engine) as session:
        claimed = repo.claim_evaluation(
            session, evaluation_id=evaluation_id, worker=worker, pid=pid, lease_seconds=LEASE, now=now
        )
        return claimed.attempt if claimed else None


def load(engine: Engine, evaluation_id: str) -> Evaluation:
    with read_session(engine) as session:
        evaluation = session.get(Evaluation, evaluation_id)
    assert evaluation is not None
    return evaluation


def write(engine: Engine, call: Callable[..., Any], **kwargs: Any) -> None:
    with write_transaction(engine) as session:
        call(session, **kwargs)


def test_a_lost_run_is_requeued_and_its_old_attempt_fenced_out(
    engine: Engine, settings: Settings, at: Clock
) -> None:
    evaluation_id = create(engine, at(0))
    assert claim(engine, evaluation_id, at(0)) == 1
    write(engine, repo.record_progress, evaluation_id=evaluation_id, attempt=1, done=5, total=10,
          lease_seconds=LEASE, now=at(20))  # fmt: skip
    assert run(engine, settings, at(49)).counts() == EvaluationReapReport().counts()  # renewed to 50

    send = Sender()
    report = run(engine, settings, at(51), send)

    assert (report.requeued, send.sent) == (1, [evaluation_id])
    row = load(engine, evaluation_id)
    assert (row.state, row.attempt, row.worker, row.pid) == ("queued", 2, "", None)
    assert (
        "re-queued as attempt 2 (retry 1 of 1)" in row.state_reason and "w1@host (pid 11" in row.state_reason
    )
    assert [(x["worker"], x["pid"], x["attempt"]) for x in row.lost] == [("w1@host", 11, 1)]
    for late in (repo.renew_lease, repo.finish_evaluation):  # the old run comes back: refused
        with pytest.raises(EvaluationFencedError):
            kwargs = {"lease_seconds": LEASE} if late is repo.renew_lease else {"report": {"data": {}}}
            write(engine, late, evaluation_id=evaluation_id, attempt=1, **kwargs)
    assert claim(engine, evaluation_id, at(52), worker="w2@host", pid=22) == 2
    write(
        engine,
        repo.finish_evaluation,
        evaluation_id=evaluation_id,
        attempt=2,
        report={"data": {"samples": 3}},
    )
    assert load(engine, evaluation_id).state == "succeeded"


def test_past_the_budget_it_fails_naming_every_lost_worker(
    engine: Engine, settings: Settings, at: Clock
) -> None:
    evaluation_id = create(engine, at(0))
    claim(engine, evaluation_id, at(0), "w1@host", 11)
    run(engine, settings, at(31))
    claim(engine, evaluation_id, at(32), "w2@host", 22)

    report = run(engine, settings, at(63))

    assert (report.requeued, report.failed, report.sent) == (0, 1, [])
    row = load(engine, evaluation_id)
    assert row.state == "failed" and row.finished_at is not None
    assert "retry budget 1 used up" in row.state_reason
    assert (
        "w1@host (pid 11, attempt 1)" in row.state_reason
        and "w2@host (pid 22, attempt 2)" in row.state_reason
    )


def test_a_stopped_or_restarted_node_is_lost_before_its_lease_runs_out(
    engine: Engine, settings: Settings, at: Clock
) -> None:
    write(engine, beat_worker, name="w1@host", pid=10, started_at=at(-100), now=at(0))
    evaluation_id = create(engine, at(0))
    claim(engine, evaluation_id, at(1))
    assert run(engine, settings, at(5)).requeued == 0  # the node lives, the lease runs

    write(engine, mark_stopped, name="w1@host", reason="its main process 10 died", now=at(6))

    assert run(engine, settings, at(7)).requeued == 1
    row = load(engine, evaluation_id)
    assert row.attempt == 2 and "its node stopped" in row.state_reason and "died" in row.state_reason

    claim(engine, evaluation_id, at(8))  # attempt 2 on the node's next life ...
    write(engine, beat_worker, name="w1@host", pid=12, started_at=at(9), now=at(9))  # ... which restarts
    assert run(engine, settings.model_copy(update={"infra_retry_budget": 2}), at(10)).requeued == 1
    assert "its node restarted" in load(engine, evaluation_id).state_reason


def test_an_unclaimed_message_is_sent_again_with_backoff(
    engine: Engine, settings: Settings, at: Clock
) -> None:
    evaluation_id = create(engine, at(0))  # its message was lost (the broker was down at the POST)
    assert run(engine, settings, at(59)).redispatched == 0

    failing = run(engine, settings, at(60), Sender(fail=True))
    assert (failing.redispatched, failing.dispatch_errors) == (1, 1)
    assert run(engine, settings, at(150)).redispatched == 0  # sent twice: next after 120 s
    send = Sender()
    assert run(engine, settings, at(180), send).redispatched == 1 and send.sent == [evaluation_id]
    assert load(engine, evaluation_id).dispatch_count == 3
    claim(engine, evaluation_id, at(181))
    assert run(engine, settings, at(1000)).redispatched == 0


def test_one_claim_wins_and_concurrent_reapers_act_once(
    engine: Engine, settings: Settings, at: Clock, concurrently: Callable[..., list[Any]]
) -> None:
    evaluation_id = create(engine, at(0))
    claims = concurrently(*[partial(claim, engine, evaluation_id, at(1), f"w{i}@host", i) for i in range(4)])
    assert sorted(claims, key=str) == [1, None, None, None]

    send = Sender()
    reports = concurrently(*[partial(run, engine, settings, at(40), send)] * 3)

    assert sum(r.requeued for r in reports) == 1 and sum(r.errors for r in reports) == 0
    assert send.sent == [evaluation_id] and load(engine, evaluation_id).attempt == 2
