"""GET /jobs/{id}/metrics: epoch order, paging, superseded rows after a resume."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import write_transaction
from jobstore.kinds import CheckpointKind
from jobstore.states import AttemptOutcome
from tests.api.worker_sim import SimWorker


def _job_with_epochs(client: TestClient, engine: Engine, body: dict[str, Any], epochs: int) -> SimWorker:
    worker = SimWorker(engine, client.post("/jobs", json=body).json()["id"])
    worker.claim()
    for epoch in range(1, epochs + 1):
        worker.epoch(epoch, val_f1=0.6 + epoch / 100)
    return worker


def test_metrics_come_in_epoch_order_one_page_at_a_time(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    worker = _job_with_epochs(client, engine, job_body, epochs=5)

    first = client.get(f"/jobs/{worker.job_id}/metrics", params={"limit": 2}).json()
    rest = client.get(
        f"/jobs/{worker.job_id}/metrics", params={"after_epoch": first["next_after_epoch"]}
    ).json()

    assert [m["epoch"] for m in first["data"]] == [1, 2]
    assert first["next_after_epoch"] == 2
    assert [m["epoch"] for m in rest["data"]] == [3, 4, 5]
    assert rest["next_after_epoch"] is None
    row = rest["data"][-1]
    assert row["val_f1"] == 0.65
    assert (row["stage"], row["attempt"], row["superseded"]) == (1, 1, False)
    assert row["lrs"] == {"head": 1e-4}


def test_rows_past_a_restored_checkpoint_are_superseded_not_lost(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    worker = _job_with_epochs(client, engine, job_body, epochs=4)
    worker.checkpoint(f"{worker.job_id}/e2.pt", CheckpointKind.LAST, epoch=2)
    worker.finish(AttemptOutcome.PAUSED, reason="pause")
    assert client.post(f"/jobs/{worker.job_id}/resume", json={"from": "epoch:2"}).status_code == 202
    worker.claim()
    with write_transaction(engine) as tx:
        repo.record_restore(
            tx,
            job_id=worker.job_id,
            attempt=worker.attempt,
            stage=1,
            epoch=2,
            resumed_from=f"{worker.job_id}/e2.pt",
        )
    worker.epoch(3, val_f1=0.9)

    live = client.get(f"/jobs/{worker.job_id}/metrics").json()["data"]
    everything = client.get(f"/jobs/{worker.job_id}/metrics", params={"include_superseded": True}).json()[
        "data"
    ]

    assert [(m["epoch"], m["attempt"]) for m in live] == [(1, 1), (2, 1), (3, 2)]
    assert [(m["epoch"], m["attempt"], m["superseded"]) for m in everything] == [
        (1, 1, False),
        (2, 1, False),
        (3, 2, False),
        (3, 1, True),
        (4, 1, True),
    ]


def test_metrics_paging_keeps_an_epochs_rows_together(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    worker = _job_with_epochs(client, engine, job_body, epochs=3)
    worker.checkpoint(f"{worker.job_id}/e1.pt", CheckpointKind.LAST, epoch=1)
    worker.finish(AttemptOutcome.PAUSED, reason="pause")
    client.post(f"/jobs/{worker.job_id}/resume", json={"from": "epoch:1"})
    worker.claim()
    with write_transaction(engine) as tx:
        repo.record_restore(tx, job_id=worker.job_id, attempt=worker.attempt, stage=1, epoch=1)
    worker.epoch(2)
    params = {"include_superseded": True, "limit": 2}

    first = client.get(f"/jobs/{worker.job_id}/metrics", params=params).json()

    assert [m["epoch"] for m in first["data"]] == [1]  # epoch 2's two rows stay together
    assert first["next_after_epoch"] == 1


def test_metrics_of_an_unknown_job_is_404(client: TestClient) -> None:
    assert client.get("/jobs/0123456789abcdef0123456789abcdef/metrics").status_code == 404


def test_metrics_parameters_are_validated(client: TestClient, job_body: dict[str, Any]) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]

    response = client.get(f"/jobs/{job_id}/metrics", params={"after_epoch": -1})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "after_epoch"


def test_points_thins_a_long_run_keeping_extremes_and_stage_edges(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    worker = SimWorker(engine, client.post("/jobs", json=job_body).json()["id"])
    worker.claim()
    for epoch in range(1, 61):
        dip = 0.1 if epoch == 23 else 0.6 + (epoch % 5) / 100
        worker.epoch(epoch, stage=1 if epoch <= 40 else 2, val_f1=dip)
    url = f"/jobs/{worker.job_id}/metrics"

    thinned = client.get(url, params={"points": 8}).json()
    whole = client.get(url, params={"points": 100}).json()
    later = client.get(url, params={"points": 8, "after_epoch": 50}).json()

    epochs = [row["epoch"] for row in thinned["data"]]
    assert epochs == sorted(epochs) and len(epochs) < 60
    assert {1, 23, 40, 41, 60} <= set(epochs)  # ends, the dip, the stage edges
    assert thinned["next_after_epoch"] is None
    assert [row["epoch"] for row in whole["data"]] == list(range(1, 61))
    assert all(row["epoch"] > 50 for row in later["data"])
    assert client.get(url, params={"points": 1}).status_code == 422
