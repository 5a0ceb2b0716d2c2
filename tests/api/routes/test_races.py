"""POST /jobs with a ``race`` section and the race routes, on SQLite and PostgreSQL.

The worker's part is played by ``SimWorker`` (jobstore's own functions) and the race service's pass
is called in-process; the races with real workers are in tests/jobstore/test_race_service.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import transaction_factory, write_transaction
from jobstore.kinds import CheckpointKind
from jobstore.race_service import advance_races
from jobstore.records import EpochRow
from jobstore.repo.keys import Role
from tests.api.conftest import KeyMaker
from tests.api.worker_sim import SimWorker


def race_body(job_body: dict[str, Any], **race: Any) -> dict[str, Any]:
    return {**job_body, "race": {"rungs": [6], **race}}


def advance(engine: Engine) -> list[tuple[str, int]]:
    return advance_races(
        transaction_factory(engine), now=datetime.now(UTC), dispatch=lambda *_: None
    ).dispatched


def finish_stage1(engine: Engine, parent: str, samples: int = 0) -> None:
    worker = SimWorker(engine, parent)
    worker.claim()
    for epoch in (1, 2, 3):
        if samples:
            trained(worker, epoch, val_f1=0.6, samples=samples)
        else:
            worker.epoch(epoch, val_f1=0.6 + epoch / 100)
        worker.checkpoint(f"{parent}/last.pt", CheckpointKind.LAST, epoch, val_f1=0.6 + epoch / 100)
    worker.finish()


def test_a_race_runs_stage_1_once_then_forks_a_child_per_candidate(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    key = {"Idempotency-Key": "race-1"}
    response = client.post("/jobs", json=race_body(job_body), headers=key)
    assert response.status_code == 201
    parent = response.json()
    replay = client.post("/jobs", json=race_body(job_body), headers=key)
    assert replay.status_code == 200 and replay.json()["id"] == parent["id"]
    other = client.post("/jobs", json=race_body(job_body, keep_fraction=0.3), headers=key)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert (parent["spec"]["epochs"], parent["spec"]["unfreeze_backbone_epoch"]) == (3, None)  # stage 1 only
    race = client.get(f"/jobs/{parent['id']}/race").json()
    assert race["state"] == "stage1" and race["stage1_epochs"] == 3
    status = {e["candidate"]: e["status"] for e in race["leaderboard"]}
    assert status == {"guide": "waiting", "back-half-lr1": "waiting", "whole-lr1": "waiting",
                      "full-finetune": "running"}  # fmt: skip
    [listed] = client.get("/jobs", params={"parent": parent["id"]}).json()["data"]
    control = client.get(f"/jobs/{listed['id']}").json()
    assert control["spec"]["freeze_backbone"] is False and control["spec"]["pretrain"] == job_body["pretrain"]
    assert control["race"] is None  # a candidate is an ordinary job
    assert client.get(f"/jobs/{parent['id']}").json()["race"]["state"] == "stage1"

    finish_stage1(engine, parent["id"])
    sent = advance(engine)

    race = client.get(f"/jobs/{parent['id']}/race").json()
    assert race["state"] == "racing" and len(sent) == 3
    status = client.get(f"/jobs/{parent['id']}").json()  # stage 1 is done; the race is not
    assert status["state"] == "succeeded" and status["race"] == {
        "state": "racing", "winner": None, "reason": race["reason"], "link": f"/jobs/{parent['id']}/race",
    }  # fmt: skip
    listed = client.get("/jobs", params={"parent": parent["id"]}).json()["data"]
    children = [client.get(f"/jobs/{c['id']}").json() for c in listed]
    forks = {c["name"]: c for c in children if c["fork_from"].get("from")}
    whole = forks[f"{job_body['name']}-whole-lr1"]
    assert whole["spec"]["stage2"]["lr_factor"] == 1.0 and whole["spec"]["stage2"]["unfreeze_ratio"] == 1.0
    assert whole["spec"]["epochs"] == 10 and whole["spec"]["unfreeze_backbone_epoch"] == 4
    assert whole["epoch"] == 3 and whole["fork_from"]["epoch"] == 3
    events = client.get(f"/jobs/{parent['id']}/events", params={"limit": 50}).json()["data"]
    assert [e["kind"] for e in events].count("forked") == 3


@pytest.mark.parametrize(
    ("race", "pretrain", "field"),
    [
        ({}, False, "race"),  # the default control needs model A
        ({"rungs": [2]}, True, "race"),  # a rung inside stage 1
        (
            {"candidates": [{"name": "x", "stage2": {"lr_factor": 3}}]},
            True,
            "race.candidates.0.stage2.lr_factor",
        ),
        ({"candidates": [{"name": "x"}, {"name": "x"}]}, True, "race.candidates"),
        ({"keep_fraction": 1.0}, True, "race.keep_fraction"),
    ],
)
def test_a_bad_race_is_refused_naming_the_field(
    client: TestClient, job_body: dict[str, Any], race: dict[str, Any], pretrain: bool, field: str
) -> None:
    body = race_body(job_body, **race)
    if not pretrain:
        body.pop("pretrain")
    response = client.post("/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_a_race_without_rungs_is_stored_with_the_default_ones(
    client: TestClient, job_body: dict[str, Any]
) -> None:
    parent = client.post("/jobs", json={**job_body, "race": {}}).json()["id"]  # U = 4, 10 epochs
    race = client.get(f"/jobs/{parent}/race").json()
    assert race["rungs"] == [5, 7] and race["next_rung"] == 5  # a quarter and a half into stage 2
    explicit = client.post("/jobs", json={**job_body, "name": "no-cuts", "race": {"rungs": []}}).json()["id"]
    assert client.get(f"/jobs/{explicit}/race").json()["rungs"] == []  # asked for no halving


def test_operator_commands_are_checked_logged_and_idempotent(
    client: TestClient, engine: Engine, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    parent = client.post("/jobs", json=race_body(job_body)).json()["id"]
    url = f"/jobs/{parent}/race"
    viewer = make_key("eve", Role.VIEWER).headers
    assert client.post(f"{url}/stop", headers=viewer).status_code == 403
    assert client.post(f"{url}/promote", json={"candidate": "nobody"}).status_code == 409

    probe = {"name": "lr02", "stage2": {"lr_factor": 0.2}, "reason": "probe"}
    added = client.post(f"{url}/candidates", json=probe, headers={"Idempotency-Key": "add-1"})
    assert added.status_code == 202
    assert {e["candidate"]: e["status"] for e in added.json()["leaderboard"]}["lr02"] == "waiting"
    again = client.post(f"{url}/candidates", json=probe, headers={"Idempotency-Key": "add-1"})
    assert again.status_code == 200 and len(again.json()["leaderboard"]) == 5
    other = client.post(f"{url}/candidates", json={"name": "lr03"}, headers={"Idempotency-Key": "add-1"})
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"

    stopped = client.post(f"{url}/stop", json={"reason": "wrong data"})
    assert stopped.status_code == 202
    advance(engine)
    race = client.get(url).json()
    assert race["state"] == "stopped" and "wrong data" in race["reason"] and race["winner"] is None
    assert {e["status"] for e in race["leaderboard"]} == {"cut"}
    assert client.get(f"/jobs/{parent}").json()["state"] == "cancelled"  # stage 1 was only queued
    assert client.post(f"{url}/extend", json={"candidate": "guide"}).status_code == 409
    events = client.get(f"/jobs/{parent}/events", params={"limit": 50}).json()["data"]
    commands = [e["evidence"]["kind"] for e in events if e["kind"] == "race_command"]
    assert commands == ["create", "add", "stop"]


def test_a_spent_budget_leaves_the_leader_whose_model_becomes_the_result(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    candidates = [{"name": "guide"}, {"name": "whole", "stage2": {"lr_factor": 1.0, "unfreeze_ratio": 1.0}}]
    body = race_body(job_body, candidates=candidates, rungs=[], budget_sample_epochs=700)
    parent = client.post("/jobs", json=body).json()["id"]
    finish_stage1(engine, parent, samples=100)  # 300 sample-epochs
    advance(engine)
    race = client.get(f"/jobs/{parent}/race").json()
    workers = {e["candidate"]: SimWorker(engine, e["job_id"]) for e in race["leaderboard"]}
    for worker in workers.values():
        worker.claim()
    for epoch in (4, 5):  # 2 candidates x 2 epochs x 100 more: 700, the budget
        advance(engine)
        assert client.get(f"/jobs/{parent}/race").json()["decisions"] == []
        for name, worker in workers.items():
            trained(worker, epoch, val_f1=0.8 if name == "whole" else 0.7, samples=100)
    advance(engine)

    race = client.get(f"/jobs/{parent}/race").json()
    [decision] = race["decisions"]
    assert race["budget"] == {"used_sample_epochs": 700, "total_sample_epochs": 700}
    assert decision["budget"] is True and (decision["kept"], decision["cut"]) == (["whole"], ["guide"])
    whole = workers["whole"]
    whole.checkpoint(f"{whole.job_id}/best.pt", CheckpointKind.BEST, 5, stage=2, val_f1=0.8)
    whole.finish()
    advance(engine)
    race = client.get(f"/jobs/{parent}/race").json()
    assert race["state"] == "finished" and race["winner"] == "whole"
    top = client.get(f"/jobs/{parent}").json()
    assert top["best_f1"] == 0.8 and client.get(f"/jobs/{whole.job_id}/checkpoints").status_code == 200
    assert (top["race"]["state"], top["race"]["winner"]) == ("finished", "whole")
    with write_transaction(engine) as session:
        assert repo.get_job(session, parent).best_checkpoint == f"{whole.job_id}/best.pt"


def trained(worker: SimWorker, epoch: int, val_f1: float, samples: int) -> None:
    row = EpochRow(epoch=epoch, stage=2, val_loss=1 - val_f1, val_f1=val_f1, extra={"train_samples": samples})
    with write_transaction(worker.engine) as tx:
        repo.record_epoch(tx, job_id=worker.job_id, attempt=worker.attempt, row=row)


def test_an_extended_candidate_survives_the_rung_it_would_lose(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    candidates = [{"name": "guide"}, {"name": "whole", "stage2": {"lr_factor": 1.0, "unfreeze_ratio": 1.0}}]
    parent = client.post("/jobs", json=race_body(job_body, candidates=candidates, rungs=[4, 5])).json()["id"]
    finish_stage1(engine, parent)
    advance(engine)
    race = client.get(f"/jobs/{parent}/race").json()
    workers = {e["candidate"]: SimWorker(engine, e["job_id"]) for e in race["leaderboard"]}
    extended = client.post(
        f"/jobs/{parent}/race/extend", json={"candidate": "guide", "reason": "give it time"}
    )
    assert extended.status_code == 202
    assert {e["candidate"]: e["protected"] for e in extended.json()["leaderboard"]} == {
        "guide": True,
        "whole": False,
    }
    for epoch in (4, 5):
        for name, worker in workers.items():
            if epoch == 4:
                worker.claim()
            trained(worker, epoch, val_f1=0.8 if name == "whole" else 0.7, samples=10)
        advance(engine)

    first, second = client.get(f"/jobs/{parent}/race").json()["decisions"]
    assert (first["kept"], first["cut"]) == (["whole", "guide"], [])  # protected through rung 4 ...
    assert (second["kept"], second["cut"]) == (["whole"], ["guide"])  # ... but not rung 5
    [cancel] = [e for e in client.get(f"/jobs/{workers['guide'].job_id}/events").json()["data"]
                if e["kind"] == "command_requested"]  # fmt: skip
    assert cancel["actor"] == "race" and "rung epoch 5" in cancel["reason"]
