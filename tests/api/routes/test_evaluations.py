"""POST/GET /evaluations, their images, and a job's own evaluation (GET /jobs/{id}/evaluation), over
real HTTP. The worker's part (claim, report, finish) is played through jobstore here; the real
worker runs evaluations in tests/worker/test_evaluation.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from api.settings import ApiSettings
from jobstore.db import write_transaction
from jobstore.kinds import CheckpointKind
from jobstore.repo import evaluations
from jobstore.repo.keys import Role
from tests.api.broker import QueueReader
from tests.api.conftest import DATASET, PRETRAIN, KeyMaker
from tests.api.worker_sim import SimWorker
from tests.evaluation_report import make_report, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BODY: dict[str, Any] = {"name": "A on B", "model": {"path": PRETRAIN}, "data": {"path": DATASET}}


def _play_worker(engine: Engine, settings: ApiSettings, evaluation_id: str, report: dict[str, Any]) -> None:
    """What the worker does: claim, write the folder, store the report."""
    with write_transaction(engine) as session:
        claimed = evaluations.claim_evaluation(
            session, evaluation_id=evaluation_id, worker="sim@host", lease_seconds=30
        )
        assert claimed is not None
        out, attempt = settings.runs_root / claimed.out_dir, claimed.attempt
    write_report(out, report)
    with write_transaction(engine) as session:
        evaluations.finish_evaluation(session, evaluation_id=evaluation_id, attempt=attempt, report=report)


def _is_png(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.content.startswith(PNG_MAGIC)


def test_post_queues_a_run_then_serves_report_and_images(
    http: httpx.Client, queue: QueueReader, engine: Engine, api_settings: ApiSettings
) -> None:
    created = http.post("/evaluations", json={**BODY, "split": "test", "threshold": {"rule": "f1"}})

    assert created.status_code == 201, created.text
    evaluation = created.json()
    assert created.headers["location"] == f"/evaluations/{evaluation['id']}"
    assert (evaluation["state"], evaluation["model_root"], evaluation["model_path"]) == (
        "queued", "model", PRETRAIN,
    )  # fmt: skip
    assert (evaluation["data_path"], evaluation["split"], evaluation["summary"]) == (DATASET, "test", None)
    message = queue.get()
    assert (message.task, message.args) == ("ocec.run_evaluation", [evaluation["id"]])
    assert http.get(f"/evaluations/{evaluation['id']}/roc.png").status_code == 404  # no report yet

    report = make_report(samples=30, seed=3)
    _play_worker(engine, api_settings, evaluation["id"], report)

    done = http.get(f"/evaluations/{evaluation['id']}").json()
    assert done["state"] == "succeeded"
    assert done["report"]["sweep"] == report["sweep"]
    assert done["summary"]["at_threshold"] == report["at_threshold"]
    assert done["progress"] == {"done": 30, "total": 30}
    listed = http.get("/evaluations").json()["data"]
    assert [(e["id"], e["report"]) for e in listed] == [(evaluation["id"], None)]  # the list stays small
    for link in ("worst_png", "roc_png", "pr_png"):
        assert _is_png(http.get(done["links"][link])), link
    assert _is_png(http.get(f"/evaluations/{evaluation['id']}/worst/0.png"))
    missing = http.get(f"/evaluations/{evaluation['id']}/worst/{len(report['worst'])}.png")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_jobs_artifact_is_scored_from_the_runs_root(
    http: httpx.Client, engine: Engine, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    worker = SimWorker(engine, http.post("/jobs", json=job_body).json()["id"])
    worker.claim()
    body = {**BODY, "model": {"job": worker.job_id, "artifact": "best"}}
    refused = http.post("/evaluations", json=body)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "model.artifact"  # no best.pt yet

    (api_settings.runs_root / worker.job_id).mkdir()
    (api_settings.runs_root / worker.job_id / "best.pt").write_bytes(b"weights")
    worker.checkpoint(f"{worker.job_id}/best.pt", CheckpointKind.BEST, epoch=1, val_f1=0.8)
    created = http.post("/evaluations", json=body).json()

    assert (created["model_root"], created["model_path"]) == ("runs", f"{worker.job_id}/best.pt")
    assert created["source"]["model"]["job"] == worker.job_id


def _field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    field: str = response.json()["errors"][0]["field"]
    return field


def test_bad_requests_are_problems_naming_the_field(http: httpx.Client, api_settings: ApiSettings) -> None:
    outside = api_settings.home / "secret.pt"
    outside.write_bytes(b"x")
    cases = {
        "model": {**BODY, "model": {"path": PRETRAIN, "upload": "a" * 32}},
        "model.path": {**BODY, "model": {"path": "../secret.pt"}},
        "model.upload": {**BODY, "model": {"upload": "b" * 32}},
        "model.job": {**BODY, "model": {"job": "c" * 32}},
        "model.artifact": {**BODY, "model": {"job": "c" * 32, "artifact": "../x"}},
        "data": {**BODY, "data": {}},
        "data.path": {**BODY, "data": {"path": "no-such-set"}},
        "threshold.target": {**BODY, "threshold": {"rule": "precision_closed"}},
        "split": {**BODY, "split": "train"},
    }
    for field, body in cases.items():
        assert _field(http.post("/evaluations", json=body)) == field, field
    assert http.get("/evaluations").json()["data"] == []  # nothing stored


def test_viewers_read_operators_create(http: httpx.Client, make_key: KeyMaker) -> None:
    viewer = make_key("watcher", Role.VIEWER).headers
    assert http.post("/evaluations", json=BODY, headers=viewer).status_code == 403
    assert http.get("/evaluations", headers=viewer).status_code == 200
    assert http.get("/evaluations", headers={"Authorization": ""}).status_code == 401


def test_the_list_pages_newest_first(http: httpx.Client) -> None:
    ids = [http.post("/evaluations", json=BODY).json()["id"] for _ in range(3)]

    first = http.get("/evaluations", params={"limit": 2}).json()
    second = http.get("/evaluations", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    assert [e["id"] for e in first["data"] + second["data"]] == ids[::-1]
    assert second["next_cursor"] is None


def _job_reports(settings: ApiSettings, job_id: str) -> dict[str, dict[str, Any]]:
    reports = {"before_B": make_report(seed=1, skill=0.1), "after_B": make_report(seed=2, skill=0.35)}
    for tag, report in reports.items():
        write_report(settings.runs_root / job_id / "evaluation" / tag, report)
    return reports


def test_a_jobs_own_evaluation_table_reports_and_images(
    http: httpx.Client, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    job_id = http.post("/jobs", json=job_body).json()["id"]
    assert http.get(f"/jobs/{job_id}/evaluation").json() == {"job_id": job_id, "summary": None, "reports": {}}
    reports = _job_reports(api_settings, job_id)

    answer = http.get(f"/jobs/{job_id}/evaluation").json()

    assert answer["reports"] == reports
    table = answer["summary"]["table"]
    assert [(r["tag"], r["model"], r["domain"]) for r in table] == [
        ("before_B", "A", "B"),
        ("after_B", "best", "B"),
    ]
    assert table[1]["f1"] == reports["after_B"]["at_0_5"]["f1"]
    assert _is_png(http.get(f"/jobs/{job_id}/evaluation/after_B/worst.png"))
    assert _is_png(http.get(f"/jobs/{job_id}/evaluation/after_B/worst/0.png"))
    assert _is_png(http.get(f"/jobs/{job_id}/evaluation/pr.png", params={"tag": ["before_B", "after_B"]}))
    assert _is_png(http.get(f"/jobs/{job_id}/evaluation/roc.png"))
    assert http.get(f"/jobs/{job_id}/evaluation/nope/worst.png").status_code == 404
    assert http.get(f"/jobs/{job_id}/evaluation/roc.png", params={"tag": "nope"}).status_code == 404
    assert http.get(f"/jobs/{job_id}/evaluation/..%2f..%2fx/worst.png").status_code in (404, 422)


def test_unreadable_files_are_not_served(
    http: httpx.Client, api_settings: ApiSettings, tmp_path: Path
) -> None:
    job_id = http.post("/jobs", json={"name": "j", "data_root": DATASET}).json()["id"]
    folder = api_settings.runs_root / job_id / "evaluation"
    (folder / "after_B").mkdir(parents=True)
    (folder / "after_B" / "report.json").write_text("{not json")
    (tmp_path / "elsewhere").mkdir()
    (folder / "linked").symlink_to(tmp_path / "elsewhere")  # a link out of the runs root
    write_report(tmp_path / "elsewhere", make_report())

    answer = http.get(f"/jobs/{job_id}/evaluation").json()

    assert answer["reports"] == {}
    assert http.get(f"/jobs/{job_id}/evaluation/linked/worst.png").status_code == 404
