"""GET /jobs/{id}/checkpoints and artifact downloads, confined to the runs root."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.settings import ApiSettings
from jobstore.kinds import CheckpointKind
from tests.api.worker_sim import SimWorker


def _job_with_files(
    client: TestClient, engine: Engine, settings: ApiSettings, body: dict[str, Any]
) -> SimWorker:
    worker = SimWorker(engine, client.post("/jobs", json=body).json()["id"])
    worker.claim()
    worker.epoch(1, val_f1=0.81)
    run_dir = settings.runs_root / worker.job_id
    run_dir.mkdir()
    (run_dir / "best.pt").write_bytes(b"best weights")
    (run_dir / "last.pt").write_bytes(b"last weights")
    worker.checkpoint(f"{worker.job_id}/last.pt", CheckpointKind.LAST, epoch=1)
    worker.checkpoint(f"{worker.job_id}/best.pt", CheckpointKind.BEST, epoch=1, val_f1=0.81)
    return worker


def test_checkpoints_are_listed_with_download_links(
    client: TestClient, engine: Engine, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    worker = _job_with_files(client, engine, api_settings, job_body)

    records = client.get(f"/jobs/{worker.job_id}/checkpoints").json()

    assert {(r["kind"], r["epoch"]) for r in records} == {("last", 1), ("best", 1)}
    best = next(r for r in records if r["kind"] == "best")
    assert best["val_f1"] == 0.81
    assert best["download"] == f"/jobs/{worker.job_id}/artifacts/{worker.job_id}/best.pt"
    assert client.get(best["download"]).content == b"best weights"


def test_best_pt_alias_downloads_the_best_checkpoint(
    client: TestClient, engine: Engine, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    worker = _job_with_files(client, engine, api_settings, job_body)

    response = client.get(f"/jobs/{worker.job_id}/artifacts/best.pt")

    assert response.status_code == 200
    assert response.content == b"best weights"
    assert response.headers["content-type"] == "application/octet-stream"
    assert 'filename="best.pt"' in response.headers["content-disposition"]
    assert client.get(f"/jobs/{worker.job_id}/artifacts/last.pt").content == b"last weights"


def test_missing_artifacts_are_404_problems(
    client: TestClient, engine: Engine, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    worker = _job_with_files(client, engine, api_settings, job_body)

    no_onnx = client.get(f"/jobs/{worker.job_id}/artifacts/best.onnx")
    unrecorded = client.get(f"/jobs/{worker.job_id}/artifacts/{worker.job_id}/secret.pt")

    assert (no_onnx.status_code, unrecorded.status_code) == (404, 404)
    assert no_onnx.headers["content-type"] == "application/problem+json"


def test_a_record_pointing_outside_the_runs_root_is_not_served(
    client: TestClient, engine: Engine, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    worker = _job_with_files(client, engine, api_settings, job_body)
    secret = api_settings.home / "secret.txt"
    secret.write_text("do not serve")
    worker.checkpoint("../secret.txt", CheckpointKind.ONNX, epoch=1)

    response = client.get(f"/jobs/{worker.job_id}/artifacts/best.onnx")

    assert response.status_code == 404
    assert b"do not serve" not in response.content
