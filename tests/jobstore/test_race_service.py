"""The race service with two real Celery workers at once and the fake engine (docs/race.md).

Each race has stage 1 = epochs 1-2 (the parent) and two forked candidates, the guide's recipe and the
whole backbone at lr x1, scripted so "whole" leads. Both candidates stop inside batch 1 of epoch 4
(the fake engine's ``hold``) until the test lets them go, so what a test does meanwhile happens while
both run, each on its own worker. The workers' companions run the reaper and the race service.
One stack (PostgreSQL, two workers) serves the module; the test that kills a worker runs last.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import cast

import fake_engine
import pytest
from worker_harness import Harness, make_harness, wait_for

from jobstore import repo
from jobstore.db import make_engine, read_session, write_transaction
from jobstore.events import EventKind
from jobstore.kinds import CommandKind
from jobstore.migrate import upgrade_to_head
from jobstore.models import Command, Job, Race
from jobstore.race_service import retention_f1
from jobstore.repo import RaceCommand
from jobstore.spec import JobCreate
from tests.api.conftest import forget_queue
from tests.faults.processes import kill_tree_9

CURVES = {"0.05/0.5": [0.6, 0.62, 0.64, 0.65, 0.66], "1/1": [0.6, 0.62, 0.8, 0.85, 0.9]}
HOLD = (4, 1)
FORCED = {"on_gate_fail": "proceed"}
CANDIDATES = [
    {"name": "guide", "stage2": FORCED},
    {"name": "whole", "stage2": {**FORCED, "lr_factor": 1.0, "unfreeze_ratio": 1.0}},
]


@pytest.fixture(scope="module")
def harness(
    pg_database_factory: Callable[[], str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    url = pg_database_factory()
    upgrade_to_head(url)
    db = make_engine(url)
    queue = f"test-race-{uuid.uuid4().hex[:12]}"
    h = make_harness(tmp_path_factory.mktemp("race"), url, redis_url, queue, db)
    h.dataset(f1=[0.5, 0.6], f1_by=CURVES, epoch_seconds=0.1, hold=[list(HOLD)])
    try:
        h.start_worker("w1", reaper=True)
        h.start_worker("w2", reaper=True)
        yield h
    finally:
        h.stop_workers()
        db.dispose()
        forget_queue(redis_url, queue)


def start_race(h: Harness, rungs: list[int]) -> str:
    create = JobCreate.model_validate(
        {"data_root": "setB", "epochs": 5, "unfreeze_backbone_epoch": 3, "name": "r",
         "race": {"candidates": CANDIDATES, "rungs": rungs}}
    )  # fmt: skip
    with write_transaction(h.db) as session:
        change = repo.create_race(session, create=create, actor="tester")
    for job_id, attempt in change.sends:
        h.dispatch(job_id, attempt)
    return change.parent.id


def race(h: Harness, parent: str) -> Race:
    with read_session(h.db) as session:
        found = session.get(Race, parent)
        assert found is not None
        return found


def child(h: Harness, parent: str, name: str) -> str:
    def find() -> str | None:
        entry = next(c for c in race(h, parent).candidates if c["name"] == name)
        return entry["job_id"]  # type: ignore[no-any-return]

    return wait_for(find, 60, f"candidate {name}'s job")


def both_held(h: Harness, parent: str) -> tuple[str, str]:
    guide, whole = child(h, parent, "guide"), child(h, parent, "whole")
    for job_id in (guide, whole):
        run_dir = h.settings.runs_root / job_id
        wait_for(lambda d=run_dir: fake_engine.held(d, *HOLD).exists(), 60, f"{job_id} held in epoch 4")
    return guide, whole


def release(h: Harness, *job_ids: str) -> None:
    for job_id in job_ids:
        fake_engine.release(h.settings.runs_root / job_id, *HOLD).touch()


def finished(h: Harness, parent: str) -> Race:
    return wait_for(
        lambda: (r := race(h, parent)).state in ("finished", "stopped", "failed") and r, 60, "the end"
    )


def cancels(h: Harness, job_id: str) -> list[Command]:
    with read_session(h.db) as session:
        return [c for c in repo.list_commands(session, job_id=job_id) if c.kind == CommandKind.CANCEL]


def test_an_operator_promotes_the_trailing_candidate_in_the_middle_of_a_rung(harness: Harness) -> None:
    parent = start_race(harness, rungs=[4])
    guide, whole = both_held(harness, parent)  # both inside epoch 4: the rung is not decided yet
    with write_transaction(harness.db) as session:
        repo.command_race(
            session, job_id=parent, kind=RaceCommand.PROMOTE, actor="op", reason="keep it gentle",
            params={"candidate": "guide"}, key="k1",
        )  # fmt: skip
    release(harness, guide, whole)

    done = finished(harness, parent)
    assert harness.job(whole).state == "cancelled" and harness.job(guide).state == "succeeded"
    [cancel] = cancels(harness, whole)
    assert cancel.actor == "op" and "guide promoted by op: keep it gentle" in cancel.reason
    assert done.winner == "guide" and done.state == "finished"
    [rung] = harness.events(parent, EventKind.RACE_RUNG)
    assert rung.evidence["kept"] == ["guide"] and rung.evidence["cut"] == []
    [command] = [e for e in harness.events(parent, EventKind.RACE_COMMAND) if e.evidence["kind"] == "promote"]
    assert command.actor == "op" and command.evidence["command_key"] == "k1"


def test_a_rung_cuts_the_bottom_half_a_killed_worker_loses_no_candidate_and_the_survivor_wins(
    harness: Harness,
) -> None:
    parent = start_race(harness, rungs=[3])
    guide, whole = both_held(harness, parent)
    rung = wait_for(lambda: harness.events(parent, EventKind.RACE_RUNG), 30, "the rung decision")[0]
    workers = {harness.attempts(job_id)[0].worker for job_id in (guide, whole)}
    assert len(workers) == 2  # the candidates run at once, one per worker
    victim = next(w for w in harness.workers if harness.attempts(whole)[-1].worker.startswith(w.name))
    kill_tree_9(victim.pid)  # the survivor's worker, its pool child and its companion, at once
    release(harness, guide, whole)

    done = finished(harness, parent)
    assert rung.evidence["kept"] == ["whole"] and rung.evidence["cut"] == ["guide"]
    assert {s["candidate"]: s["val_f1"] for s in rung.evidence["standings"]} == {"guide": 0.64, "whole": 0.8}
    [cancel] = cancels(harness, guide)  # through the normal command path, by the race, with its reason
    assert cancel.actor == "race" and "ranked 2 of 2" in cancel.reason and cancel.status == "applied"
    assert harness.job(guide).state == "cancelled" and harness.job(whole).state == "succeeded"
    lost, resumed = harness.attempts(whole)[:2]  # re-queued by the other worker's reaper, finished there
    assert lost.outcome == "lost" and resumed.outcome == "completed"
    assert done.winner == "whole" and "whole: best val F1 0.9000" in done.reason
    top, winner = harness.job(parent), harness.job(whole)
    assert (top.best_checkpoint, top.onnx_path, top.best_f1) == (
        winner.best_checkpoint, winner.onnx_path, winner.best_f1,
    )  # fmt: skip
    assert done.sample_epochs == 50 * (2 + 3 + 1)  # stage 1 once, whole's 3 epochs, guide's epoch 3


def test_the_retention_floor_reads_the_best_models_domain_a_row() -> None:
    evaluation = {"table": [{"tag": "after_B", "model": "best", "domain": "B", "f1": 0.95},
                            {"tag": "before_A", "model": "A", "domain": "A", "f1": 0.99},
                            {"tag": "after_A", "model": "best", "domain": "A", "f1": 0.71}]}  # fmt: skip
    assert retention_f1(cast(Job, SimpleNamespace(result={"evaluation": evaluation}))) == 0.71
    assert retention_f1(cast(Job, SimpleNamespace(result={}))) is None
    assert retention_f1(Job(name="no result column yet")) is None
