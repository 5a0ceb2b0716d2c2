"""POST /jobs/{id}/stage, /pause, /cancel, /resume, /fork on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from jobstore.kinds import CheckpointKind
from jobstore.states import AttemptOutcome
from jobstore.tasknames import TASK_RUN_JOB
from tests.api.broker import QueueReader
from tests.api.conftest import KeyMaker
from tests.api.worker_sim import SimWorker

UNKNOWN = "0123456789abcdef0123456789abcdef"


def submit(client: TestClient, body: dict[str, Any]) -> str:
    response = client.post("/jobs", json=body)
    assert response.status_code == 201
    return str(response.json()["id"])


def running(client: TestClient, engine: Engine, body: dict[str, Any], epochs: int = 2) -> SimWorker:
    worker = SimWorker(engine, submit(client, body))
    worker.claim()
    for epoch in range(1, epochs + 1):
        worker.epoch(epoch, val_f1=0.70 + epoch / 100)
        kind = CheckpointKind.BEST if epoch == epochs else CheckpointKind.LAST
        worker.checkpoint(f"{worker.job_id}/epoch{epoch}.pt", kind, epoch, val_f1=0.70 + epoch / 100)
    return worker


def paused(client: TestClient, engine: Engine, body: dict[str, Any]) -> SimWorker:
    worker = running(client, engine, body)
    worker.finish(AttemptOutcome.PAUSED, reason="operator pause")
    return worker


def assert_conflict(response: Any, job_id: str, state: str) -> dict[str, Any]:
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert (problem["job_id"], problem["state"]) == (job_id, state)
    return problem


# --- force stage ------------------------------------------------------------------------------


def test_force_stage_on_a_running_job_stores_one_command(
    client: TestClient, engine: Engine, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    job_id = running(client, engine, job_body).job_id
    body = {"stage": 2, "reason": "F1 is good enough"}
    bob = make_key("bob")

    first = client.post(f"/jobs/{job_id}/stage", json=body, headers={**bob.headers, "Idempotency-Key": "s1"})
    again = client.post(f"/jobs/{job_id}/stage", json=body, headers={"Idempotency-Key": "s1"})
    identical = client.post(f"/jobs/{job_id}/stage", json=body)

    assert first.status_code == 202
    command = first.json()["command"]
    assert (command["kind"], command["params"], command["actor"]) == ("force_stage", {"stage": 2}, bob.actor)
    assert (command["reason"], command["status"], command["command_key"]) == (
        "F1 is good enough",
        "pending",
        "s1",
    )
    assert first.json()["job"]["state"] == "running"
    assert (again.status_code, again.json()["command"]["id"]) == (200, command["id"])
    assert (identical.status_code, identical.json()["command"]["id"]) == (200, command["id"])
    requested = client.get(f"/jobs/{job_id}/events", params={"kind": "command_requested"}).json()["data"]
    assert [(e["actor"], e["command_id"]) for e in requested] == [(bob.actor, command["id"])]


def test_force_stage_key_in_the_body_works_like_the_header(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = running(client, engine, job_body).job_id
    body = {"stage": 2, "reason": "go deeper", "command_id": "c-9"}

    first = client.post(f"/jobs/{job_id}/stage", json=body)
    again = client.post(f"/jobs/{job_id}/stage", json=body)
    mismatch = client.post(f"/jobs/{job_id}/stage", json=body, headers={"Idempotency-Key": "other"})

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["command"]["id"] == first.json()["command"]["id"]
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["field"] == "command_id"


def test_force_stage_key_reused_for_another_stage_is_a_problem(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = running(client, engine, job_body).job_id
    client.post(f"/jobs/{job_id}/stage", json={"stage": 2, "reason": "r"}, headers={"Idempotency-Key": "k"})

    response = client.post(
        f"/jobs/{job_id}/stage", json={"stage": 3, "reason": "r"}, headers={"Idempotency-Key": "k"}
    )

    assert response.status_code == 422
    assert response.json()["type"] == "urn:ocec-jobs:problem:idempotency-key-reused"


def test_force_stage_on_a_queued_job_waits_for_its_first_heartbeat(
    client: TestClient, job_body: dict[str, Any]
) -> None:
    job_id = submit(client, job_body)

    response = client.post(f"/jobs/{job_id}/stage", json={"stage": 2, "reason": "skip stage 1"})

    assert response.status_code == 202
    assert response.json()["command"]["status"] == "pending"
    assert response.json()["job"]["state"] == "queued"


def test_force_stage_on_a_paused_job_points_to_resume(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = paused(client, engine, job_body).job_id

    response = client.post(f"/jobs/{job_id}/stage", json={"stage": 2, "reason": "now"})

    problem = assert_conflict(response, job_id, "paused")
    assert "/resume" in problem["detail"]


def test_force_stage_on_a_finished_job_is_409(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    worker = running(client, engine, job_body)
    worker.finish()

    response = client.post(f"/jobs/{worker.job_id}/stage", json={"stage": 2, "reason": "too late"})

    assert_conflict(response, worker.job_id, "succeeded")


def test_force_stage_on_an_unknown_job_is_404(client: TestClient) -> None:
    response = client.post(f"/jobs/{UNKNOWN}/stage", json={"stage": 2, "reason": "x"})

    assert response.status_code == 404
    assert response.json()["job_id"] == UNKNOWN


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stage": 1, "reason": "x"}, "stage"),
        ({"stage": 4, "reason": "x"}, "stage"),
        ({"stage": 2}, "reason"),
        ({"stage": 2, "reason": ""}, "reason"),
        ({"stage": 2, "reason": "   "}, "reason"),
        ({"stage": 2, "reason": "x", "when": "now"}, "when"),
    ],
)
def test_force_stage_body_is_validated(
    client: TestClient, job_body: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    job_id = submit(client, job_body)

    response = client.post(f"/jobs/{job_id}/stage", json=body)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


# --- pause and cancel ------------------------------------------------------------------------


def test_pause_of_a_running_job_is_a_command(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = running(client, engine, job_body).job_id

    response = client.post(f"/jobs/{job_id}/pause", json={"reason": "lunch"})

    assert response.status_code == 202
    assert (response.json()["command"]["kind"], response.json()["command"]["reason"]) == ("pause", "lunch")


def test_pause_of_a_queued_job_is_409(client: TestClient, job_body: dict[str, Any]) -> None:
    job_id = submit(client, job_body)

    response = client.post(f"/jobs/{job_id}/pause")

    assert "cancel it instead" in assert_conflict(response, job_id, "queued")["detail"]


def test_cancel_of_a_queued_job_is_immediate(
    client: TestClient, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    job_id = submit(client, job_body)
    carol = make_key("carol")

    response = client.post(f"/jobs/{job_id}/cancel", json={"reason": "wrong data"}, headers=carol.headers)

    assert response.status_code == 200
    assert response.json()["command"] is None
    assert (response.json()["job"]["state"], response.json()["job"]["state_reason"]) == (
        "cancelled",
        "wrong data",
    )
    last = client.get(f"/jobs/{job_id}/events").json()["data"][-1]
    assert (last["kind"], last["to_state"], last["actor"]) == ("state_change", "cancelled", carol.actor)


def test_cancel_of_a_running_job_is_a_command(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = running(client, engine, job_body).job_id

    response = client.post(f"/jobs/{job_id}/cancel")

    assert response.status_code == 202
    assert response.json()["command"]["kind"] == "cancel"
    assert response.json()["job"]["state"] == "running"


def test_cancel_of_a_paused_job_cancels_it(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = paused(client, engine, job_body).job_id

    response = client.post(f"/jobs/{job_id}/cancel")

    assert (response.status_code, response.json()["job"]["state"]) == (200, "cancelled")


def test_cancel_of_a_finished_job_is_409(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    worker = running(client, engine, job_body)
    worker.finish()

    assert_conflict(client.post(f"/jobs/{worker.job_id}/cancel"), worker.job_id, "succeeded")


def test_cancel_of_an_unknown_job_is_404(client: TestClient) -> None:
    assert client.post(f"/jobs/{UNKNOWN}/cancel").status_code == 404


# --- resume ----------------------------------------------------------------------------------


def test_resume_requeues_the_same_job_as_a_new_attempt(
    client: TestClient, engine: Engine, queue: QueueReader, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    job_id = paused(client, engine, job_body).job_id
    dave = make_key("dave")
    queue.get()  # the submission's message

    response = client.post(
        f"/jobs/{job_id}/resume",
        json={"from": "epoch:1", "stage": 2, "lr": 5e-5, "epochs": 12, "reason": "push on"},
        headers=dave.headers,
    )

    assert response.status_code == 202
    job = response.json()
    assert (job["id"], job["state"], job["attempt"], job["epochs"]) == (job_id, "queued", 2, 12)
    assert job["spec"]["lr"] == 5e-5
    assert job["resume_from"]["from"] == "epoch:1"
    assert job["resume_from"]["checkpoint"] == f"{job_id}/epoch1.pt"
    assert job["resume_from"]["overrides"]["stage"] == 2
    message = queue.get()
    assert (message.task, message.args) == (TASK_RUN_JOB, [job_id, 2])
    requested = client.get(f"/jobs/{job_id}/events", params={"kind": "resume_requested"}).json()["data"]
    assert [(e["actor"], e["reason"]) for e in requested] == [(dave.actor, "push on")]


def test_resume_without_a_body_continues_from_last(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = paused(client, engine, job_body).job_id

    response = client.post(f"/jobs/{job_id}/resume")

    assert response.status_code == 202
    assert response.json()["resume_from"]["from"] == "last"
    assert response.json()["resume_from"]["epoch"] == 2


def test_resume_of_a_running_job_is_409(client: TestClient, engine: Engine, job_body: dict[str, Any]) -> None:
    job_id = running(client, engine, job_body).job_id

    assert_conflict(client.post(f"/jobs/{job_id}/resume", json={}), job_id, "running")


def test_resume_from_a_missing_checkpoint_is_409(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = paused(client, engine, job_body).job_id

    response = client.post(f"/jobs/{job_id}/resume", json={"from": "stage:2"})

    assert response.status_code == 409
    assert response.json()["type"] == "urn:ocec-jobs:problem:no-checkpoint"
    assert response.json()["available"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "stage:9"}, "from"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": 0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2}, "epochs"),  # not past the checkpoint's epoch
        ({"stage": 5}, "stage"),
        ({"unfreeze_backbone_epoch": 99}, "unfreeze_backbone_epoch"),  # beyond the epoch budget
        ({"speed": "fast"}, "speed"),
    ],
)
def test_resume_body_is_validated(
    client: TestClient, engine: Engine, job_body: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    job_id = paused(client, engine, job_body).job_id

    response = client.post(
        f"/jobs/{job_id}/resume", content=_json(body), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def _json(body: dict[str, Any]) -> str:
    import json

    return json.dumps(body)


# --- fork ------------------------------------------------------------------------------------


def test_fork_starts_a_linked_job_with_other_stage2_settings(
    client: TestClient, engine: Engine, queue: QueueReader, job_body: dict[str, Any]
) -> None:
    parent = running(client, engine, job_body)
    parent.finish()
    queue.get()
    body = {
        "from": "best",
        "name": "deeper",
        "reason": "try more unfreezing",
        "stage2": {"unfreeze_ratio": 0.75, "lr": 2e-5},
    }

    response = client.post(f"/jobs/{parent.job_id}/fork", json=body, headers={"Idempotency-Key": "f1"})

    assert response.status_code == 201
    child = response.json()
    assert response.headers["location"] == f"/jobs/{child['id']}"
    assert (child["name"], child["state"], child["parent_job_id"]) == ("deeper", "queued", parent.job_id)
    assert child["fork_from"]["from"] == "best"
    assert child["spec"]["stage2"]["unfreeze_ratio"] == 0.75
    assert child["spec"]["stage2"]["lr"] == 2e-5
    assert child["spec"]["stage2"]["gate_f1"] == 0.8  # the parent's, not overridden
    assert child["resume_from"]["checkpoint"] == f"{parent.job_id}/epoch2.pt"
    assert child["links"]["parent"] == f"/jobs/{parent.job_id}"
    assert queue.get().args == [child["id"], 1]
    again = client.post(f"/jobs/{parent.job_id}/fork", json=body, headers={"Idempotency-Key": "f1"})
    assert (again.status_code, again.json()["id"]) == (200, child["id"])
    assert [j["id"] for j in client.get("/jobs", params={"parent": parent.job_id}).json()["data"]] == [
        child["id"]
    ]
    forked = client.get(f"/jobs/{parent.job_id}/events", params={"kind": "forked"}).json()["data"]
    assert forked[0]["evidence"]["child_job_id"] == child["id"]


def test_fork_of_a_job_without_checkpoints_is_409(client: TestClient, job_body: dict[str, Any]) -> None:
    job_id = submit(client, job_body)

    response = client.post(f"/jobs/{job_id}/fork", json={"from": "best"})

    assert response.status_code == 409
    assert response.json()["type"] == "urn:ocec-jobs:problem:no-checkpoint"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stage2": {"unfreeze_ratio": 1.5}}, "stage2.unfreeze_ratio"),
        ({"stage2": {"depth": 3}}, "stage2.depth"),
        ({"stage2": {"lr_factor": 0}}, "stage2.lr_factor"),
        ({"stage2": {"gate_f1": 1.5}}, "stage2.gate_f1"),  # the spec's bounds, derived
        ({"stage2": {"on_gate_fail": "maybe"}}, "stage2.on_gate_fail"),
        ({"stage2": {"gate_deadline_epoch": 0}}, "stage2.gate_deadline_epoch"),
        ({"name": ""}, "name"),
        ({"from": "worst"}, "from"),
    ],
)
def test_fork_body_is_validated(
    client: TestClient, engine: Engine, job_body: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    job_id = running(client, engine, job_body).job_id

    response = client.post(f"/jobs/{job_id}/fork", json=body)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_fork_of_an_unknown_job_is_404(client: TestClient) -> None:
    assert client.post(f"/jobs/{UNKNOWN}/fork", json={}).status_code == 404
