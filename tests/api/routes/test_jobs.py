"""POST /jobs, GET /jobs, GET /jobs/{id} on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.settings import ApiSettings
from jobstore.db import write_transaction
from jobstore.models import Job
from jobstore.repo.workers import beat_worker
from jobstore.tasknames import TASK_RUN_JOB
from tests.api.broker import QueueReader
from tests.api.conftest import DATASET, PRETRAIN, KeyMaker
from tests.api.worker_sim import WORKER, SimWorker


def test_create_job_answers_201_with_location_and_dispatches_it(
    client: TestClient, queue: QueueReader, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    alice = make_key("alice")
    response = client.post("/jobs", json=job_body, headers=alice.headers)

    assert response.status_code == 201
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["state"] == "queued"
    assert job["attempt"] == 1
    assert job["spec"]["data_root"] == DATASET
    assert job["spec"]["pretrain"] == PRETRAIN
    assert job["queue_position"] == 1
    message = queue.get()
    assert message.task == TASK_RUN_JOB
    assert message.args == [job["id"], 1]
    created = client.get(f"/jobs/{job['id']}/events").json()["data"][0]
    assert (created["kind"], created["actor"]) == ("created", alice.actor)


def test_post_then_get_over_real_http(
    http: httpx.Client, queue: QueueReader, job_body: dict[str, Any]
) -> None:
    created = http.post("/jobs", json=job_body)
    assert created.status_code == 201

    fetched = http.get(created.headers["location"])

    assert fetched.status_code == 200
    assert fetched.json()["id"] == created.json()["id"]
    assert fetched.json()["name"] == "hq-finetune"
    assert queue.get().args == [created.json()["id"], 1]


def test_same_idempotency_key_replays_the_original_job(
    client: TestClient, queue: QueueReader, job_body: dict[str, Any]
) -> None:
    headers = {"Idempotency-Key": "submit-1"}
    first = client.post("/jobs", json=job_body, headers=headers)
    second = client.post("/jobs", json=job_body, headers=headers)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    assert len(client.get("/jobs").json()["data"]) == 1
    queue.get()
    assert queue.empty(), "a replay must not dispatch the job again"


def test_same_idempotency_key_with_another_body_is_a_problem(
    client: TestClient, job_body: dict[str, Any]
) -> None:
    client.post("/jobs", json=job_body, headers={"Idempotency-Key": "k"})

    response = client.post("/jobs", json={**job_body, "lr": 2e-4}, headers={"Idempotency-Key": "k"})

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:ocec-jobs:problem:idempotency-key-reused"
    assert problem["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("change", "field", "error_type"),
    [
        ({"data_root": None}, "data_root", "missing"),
        ({"lr": float("nan")}, "lr", "finite_number"),
        ({"lr": float("inf")}, "lr", "finite_number"),
        ({"epochs": 0}, "epochs", "greater_than_equal"),
        ({"surprise": 1}, "surprise", "extra_forbidden"),
        ({"stage2": {"lr": -1}}, "stage2.lr", "greater_than"),
        ({"stage2": {"on_gate_fail": "sometimes"}}, "stage2.on_gate_fail", "enum"),
        ({"stage2": {"epoch": 3}}, "stage2.epoch", "value_error"),  # stage 2's is unfreeze_backbone_epoch
        ({"unfreeze_backbone_epoch": 50}, "unfreeze_backbone_epoch", "value_error"),
        ({"data_root": "../elsewhere"}, "data_root", "path_outside_root"),
        ({"data_root": "/etc"}, "data_root", "path_outside_root"),
        ({"data_root": "missing_set"}, "data_root", "path_not_found"),
        ({"pretrain": "nope.pt"}, "pretrain", "path_not_found"),
        ({"pretrain": "../data/dataset_B"}, "pretrain", "path_outside_root"),
        ({"data_root": f"{DATASET}/train/../../.."}, "data_root", "path_outside_root"),
        ({"data_root": "x" * 1000}, "data_root", "path_invalid"),  # longer than a file name may be
        ({"retention_data_root": "../elsewhere"}, "retention_data_root", "path_outside_root"),
        ({"retention_data_root": "missing_set"}, "retention_data_root", "path_not_found"),
        ({"test_fraction": 0.9}, "test_fraction", "less_than_equal"),
    ],
)
def test_invalid_job_answers_422_naming_the_field(
    client: TestClient, job_body: dict[str, Any], change: dict[str, Any], field: str, error_type: str
) -> None:
    body = {k: v for k, v in {**job_body, **change}.items() if v is not None}
    content = json.dumps(body)  # writes NaN / Infinity literals, as a careless client would

    response = client.post("/jobs", content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["instance"]) == (422, "/jobs")
    assert {(e["field"], e["type"]) for e in problem["errors"]} == {(field, error_type)}


def test_symlink_leaving_the_data_root_is_refused(
    client: TestClient, api_settings: ApiSettings, job_body: dict[str, Any], tmp_path: Any
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, api_settings.data_root / "sneaky")

    response = client.post("/jobs", json={**job_body, "data_root": "sneaky"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "data_root"


def test_absolute_path_inside_the_root_is_stored_relative(
    client: TestClient, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    body = {**job_body, "data_root": str(api_settings.data_root / DATASET)}

    response = client.post("/jobs", json=body)

    assert response.status_code == 201
    assert response.json()["spec"]["data_root"] == DATASET


def test_invalid_json_is_a_problem(client: TestClient) -> None:
    response = client.post("/jobs", content=b"{not json", headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"


def test_list_jobs_pages_with_an_opaque_cursor(client: TestClient, job_body: dict[str, Any]) -> None:
    ids = [client.post("/jobs", json={**job_body, "name": f"run-{i}"}).json()["id"] for i in range(5)]

    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/jobs", params=params).json()
        seen += [job["id"] for job in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(ids))  # newest first, each once
    assert cursor is None


def test_list_jobs_filters(client: TestClient, job_body: dict[str, Any]) -> None:
    alpha = client.post("/jobs", json={**job_body, "name": "Alpha-run"}).json()
    beta = client.post("/jobs", json={**job_body, "name": "beta-run"}).json()
    client.post(f"/jobs/{beta['id']}/cancel", json={"reason": "not needed"})

    def names(**params: Any) -> list[str]:
        response = client.get("/jobs", params=params)
        assert response.status_code == 200
        return [job["name"] for job in response.json()["data"]]

    assert names(state="queued") == ["Alpha-run"]
    assert sorted(names(state=["queued", "cancelled"])) == ["Alpha-run", "beta-run"]
    assert names(name="ALPHA") == ["Alpha-run"]
    assert names(stage=2) == []
    assert names(parent=alpha["id"]) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"cursor": "garbage!"}, "cursor"), ({"limit": 0}, "limit"), ({"state": "sleeping"}, "state")],
)
def test_bad_list_parameters_are_problems(client: TestClient, params: dict[str, Any], field: str) -> None:
    response = client.get("/jobs", params=params)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_a_large_limit_is_capped_by_the_server(
    client: TestClient, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    client.post("/jobs", json=job_body)

    response = client.get("/jobs", params={"limit": 10_000})

    assert response.status_code == 200
    assert api_settings.max_page_size < 10_000


def test_unknown_job_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/jobs/0123456789abcdef0123456789abcdef")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:ocec-jobs:problem:not-found"
    assert problem["job_id"] == "0123456789abcdef0123456789abcdef"
    assert problem["instance"] == "/jobs/0123456789abcdef0123456789abcdef"


def test_status_of_a_running_job(client: TestClient, engine: Engine, job_body: dict[str, Any]) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]
    waiting_id = client.post("/jobs", json={**job_body, "name": "second"}).json()["id"]
    worker = SimWorker(engine, job_id)
    worker.claim()
    for epoch in (1, 2, 3):
        worker.epoch(epoch, val_f1=0.70 + epoch / 100, seconds=4.0)
    worker.gate(epoch=3, f1=0.73)

    status = client.get(f"/jobs/{job_id}").json()

    assert status["state"] == "running"
    assert (status["stage"], status["epoch"], status["epochs"]) == (1, 3, 10)
    assert status["progress"] == pytest.approx(0.3)
    assert status["eta_seconds"] == pytest.approx(7 * 4.0)
    assert (status["best_f1"], status["best_epoch"]) == (pytest.approx(0.73), 3)
    assert status["latest_metrics"]["val_f1"] == pytest.approx(0.73)
    gate = status["next_gate"]
    assert (gate["stage"], gate["threshold"], gate["earliest_epoch"], gate["policy"]) == (
        2,
        0.8,
        4,
        "keep-trying",
    )
    assert (gate["last_f1"], gate["passed"]) == (pytest.approx(0.73), False)
    assert status["heartbeat_age_seconds"] is not None
    assert status["queue_position"] is None
    assert client.get(f"/jobs/{waiting_id}").json()["queue_position"] == 1


def test_status_says_whether_the_jobs_worker_lives_and_when_its_heartbeat_is_stale(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]
    queued_alone = client.get(f"/jobs/{job_id}").json()
    with write_transaction(engine) as tx:  # the worker's companion beats for it, from its start
        beat_worker(tx, name=WORKER, pid=7, started_at=datetime.now(UTC) - timedelta(seconds=5))
    queued = client.get(f"/jobs/{job_id}").json()
    SimWorker(engine, job_id).claim()
    fresh = client.get(f"/jobs/{job_id}").json()
    with write_transaction(engine) as tx:  # its beats stop: kill -9 of the whole worker
        job = tx.get(Job, job_id)
        assert job is not None
        job.heartbeat_at = datetime.now(UTC) - timedelta(seconds=40)
        beat_worker(tx, name=WORKER, pid=7, now=datetime.now(UTC) - timedelta(seconds=40))
    stale = client.get(f"/jobs/{job_id}").json()
    with write_transaction(engine) as tx:  # the node restarted: a new life does not run this attempt
        beat_worker(tx, name=WORKER, pid=8)
    restarted = client.get(f"/jobs/{job_id}").json()

    assert (queued_alone["worker_alive"], queued["worker_alive"]) == (False, True)
    assert queued["heartbeat_stale"] is None
    assert (fresh["state"], fresh["worker_alive"], fresh["heartbeat_stale"]) == ("running", True, False)
    assert (stale["worker_alive"], stale["heartbeat_stale"]) == (False, True)
    assert stale["heartbeat_age_seconds"] >= 40
    assert (restarted["worker_alive"], restarted["heartbeat_stale"]) == (False, True)


# ---- DELETE /jobs/{id} and the retention policy, with a real worker (fake engine) ------------------
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "worker"))  # the worker harness

from fake_engine import held, release  # noqa: E402
from worker_harness import Harness, make_harness, wait_for  # noqa: E402


@pytest.fixture
def harness(
    tmp_path: Path, db_url: str, migrated_engine: Engine, redis_url: str, unique_queue: str
) -> Iterator[Harness]:
    """Workers on the API's own home, database and queue (tests/api/conftest.py)."""
    h = make_harness(tmp_path, db_url, redis_url, unique_queue, migrated_engine)
    yield h
    h.stop_workers()


def on_disk(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_a_finished_job_is_pruned_then_deleted_as_a_tombstone(http: httpx.Client, harness: Harness) -> None:
    harness.dataset("setB", epoch_files=True, hold=[[2, 1]])
    harness.start_worker(reaper=True)  # its companion runs the reaper loop, and with it the retention pass
    job_id = http.post(
        "/jobs", json={"name": "kept-small", "data_root": "setB", "epochs": 4, "keep_epochs": 1}
    ).json()["id"]
    run_dir = harness.settings.runs_root / job_id
    wait_for(lambda: held(run_dir, 2, 1).exists(), what="the run to hold in epoch 2")

    running = http.delete(f"/jobs/{job_id}")
    release(run_dir, 2, 1).touch()

    assert running.status_code == 409 and running.headers["content-type"] == "application/problem+json"
    assert running.json()["state"] == "running" and "cancel it first" in running.json()["detail"]
    assert harness.wait_state(job_id, "succeeded").state == "succeeded"

    def pruned_three() -> list[dict[str, Any]] | None:
        gone = [c for c in http.get(f"/jobs/{job_id}/checkpoints").json() if c["pruned_at"]]
        return gone if len(gone) == 3 else None

    pruned = wait_for(pruned_three, what="epochs 1-3 pruned")
    assert sorted((c["kind"], c["epoch"], c["download"]) for c in pruned) == [
        ("epoch", e, None) for e in (1, 2, 3)
    ]
    assert sorted(p.name for p in (run_dir / "epochs").iterdir()) == ["epoch_0004.pt"]

    fork = http.post(f"/jobs/{job_id}/fork", json={"from": "epoch:2"})
    assert fork.status_code == 409 and fork.json()["type"] == "urn:ocec-jobs:problem:checkpoint-pruned"
    assert fork.json()["pruned_at"] in fork.json()["detail"] and "epoch@epoch4" in fork.json()["available"]

    used = on_disk(run_dir)
    assert used > 0 and http.get(f"/jobs/{job_id}").json()["disk_bytes"] == used
    assert f'ocec_jobs_job_disk_bytes{{job_id="{job_id}"}} {float(used)}' in http.get("/metrics").text

    deleted = http.delete(f"/jobs/{job_id}", params={"reason": "done with it"})
    again = http.delete(f"/jobs/{job_id}")

    assert deleted.status_code == again.status_code == 200
    assert deleted.json()["deleted_at"] == again.json()["deleted_at"] is not None
    assert deleted.json()["disk_bytes"] == 0 and not run_dir.exists()
    assert job_id not in [j["id"] for j in http.get("/jobs").json()["data"]]
    assert job_id in [j["id"] for j in http.get("/jobs", params={"include_deleted": True}).json()["data"]]
    [event] = http.get(f"/jobs/{job_id}/events", params={"kind": "deleted"}).json()["data"]
    assert (event["reason"], event["evidence"]["bytes"]) == ("done with it", used)
    resumed = http.post(f"/jobs/{job_id}/fork", json={"from": "last"})
    assert resumed.status_code == 409 and resumed.json()["type"] == "urn:ocec-jobs:problem:job-deleted"
    assert f'job_id="{job_id}"' not in http.get("/metrics").text
