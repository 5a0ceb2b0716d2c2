"""GET /metrics: Prometheus text parsed with prometheus_client's own parser, values checked against the
database the API reads (jobs written through jobstore, as a worker would)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import Engine
from sqlmodel import select

from api.main import create_app
from api.observability import EPOCH_BUCKETS
from api.settings import ApiSettings
from jobstore.db import read_session, write_transaction
from jobstore.models import EpochMetric, Job
from jobstore.records import EpochRow
from jobstore.repo import claim, create_job, heartbeat, record_epoch, request_cancel
from jobstore.repo.keys import Role
from jobstore.spec import JobCreate
from jobstore.states import JobState
from tests.api.conftest import DATASET, KeyMaker

Families = dict[str, list[Sample]]


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> Families:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(families: Families, name: str, **labels: str) -> float:
    """The one sample ``name`` (``…_bucket`` / ``_count`` / ``_sum`` of a histogram too) with ``labels``."""
    family = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
    samples = families.get(family, []) + (families.get(name, []) if family != name else [])
    found = [
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def new_job(engine: Engine, name: str) -> str:
    with write_transaction(engine) as tx:
        return create_job(tx, create=JobCreate(name=name, data_root=DATASET)).job.id


def run(
    engine: Engine, job_id: str, worker: str, seconds: list[float], *, at: datetime, lease: float
) -> None:
    """Claim the job as ``worker`` at ``at`` and record one epoch per duration (stage 2 from epoch 3)."""
    with write_transaction(engine) as tx:
        assert claim(
            tx, job_id=job_id, attempt=1, worker=worker, pid=1, gpu=None, lease_seconds=lease, now=at
        )
    for epoch, duration in enumerate(seconds, start=1):
        row = EpochRow(epoch=epoch, stage=1 if epoch < 3 else 2, val_f1=0.5, epoch_seconds=duration)
        with write_transaction(engine) as tx:
            record_epoch(tx, job_id=job_id, attempt=1, row=row)
    with write_transaction(engine) as tx:
        heartbeat(tx, job_id=job_id, attempt=1, lease_seconds=lease, now=at)


@pytest.fixture
def world(client: TestClient, engine: Engine) -> dict[str, Any]:
    """Two queued, two running (one with an expired lease), one cancelled; five epochs recorded."""
    queued = [new_job(engine, "q1"), new_job(engine, "q2")]
    fresh, stale = new_job(engine, "fresh"), new_job(engine, "stale")
    run(engine, fresh, "gpu0@a", [0.05, 0.3, 4.0], at=datetime.now(UTC), lease=3600)
    run(engine, stale, "gpu1@b", [7.0, 700.0], at=datetime.now(UTC) - timedelta(hours=1), lease=30)
    cancelled = new_job(engine, "gone")
    with write_transaction(engine) as tx:
        request_cancel(tx, job_id=cancelled, actor="test", reason="not needed")
    return {"queued": queued, "running": [fresh, stale]}


def test_store_metrics_equal_the_database(client: TestClient, engine: Engine, world: dict[str, Any]) -> None:
    with read_session(engine) as session:
        before = datetime.now(UTC)
        families = scrape(client)
        after = datetime.now(UTC)
        jobs = {job.id: job for job in session.exec(select(Job)).all()}
        rows = list(session.exec(select(EpochMetric)).all())

    assert value(families, "ocec_jobs_database_up") == 1
    for state in JobState:
        expected = sum(1 for job in jobs.values() if job.state == state)
        assert value(families, "ocec_jobs_jobs", state=state.value) == expected
    assert value(families, "ocec_jobs_queue_length") == 2
    oldest = min(jobs[j].queued_at for j in world["queued"])  # type: ignore[type-var]
    age = value(families, "ocec_jobs_queue_oldest_age_seconds")
    assert (before - oldest).total_seconds() <= age <= (after - oldest).total_seconds()

    for job_id in world["running"]:
        job = jobs[job_id]
        assert value(families, "ocec_jobs_running_job_epoch", job_id=job_id) == job.epoch
        assert value(families, "ocec_jobs_running_job_stage", job_id=job_id) == job.stage
        assert (
            value(families, "ocec_jobs_running_job_progress_ratio", job_id=job_id) == job.epoch / job.epochs
        )
        stamp = value(families, "ocec_jobs_worker_last_heartbeat_timestamp_seconds", worker=job.lease_owner)
        assert stamp == pytest.approx(job.heartbeat_at.timestamp())  # type: ignore[union-attr]
        assert value(families, "ocec_jobs_worker_heartbeat_age_seconds", worker=job.lease_owner) >= 0
    assert value(families, "ocec_jobs_running_epochs") == sum(jobs[j].epoch for j in world["running"])
    assert value(families, "ocec_jobs_live_leases") == 1 and value(families, "ocec_jobs_expired_leases") == 1

    for stage in (1, 2):
        seconds = [r.epoch_seconds for r in rows if r.stage == stage and r.epoch_seconds is not None]
        name = "ocec_jobs_epoch_duration_seconds"
        assert value(families, f"{name}_count", stage=str(stage)) == len(seconds)
        assert value(families, f"{name}_sum", stage=str(stage)) == pytest.approx(sum(seconds))
        for bound in EPOCH_BUCKETS:
            expected = sum(1 for s in seconds if s <= bound)
            assert value(families, f"{name}_bucket", stage=str(stage), le=str(bound)) == expected


def test_request_latency_by_route_template_method_and_status(client: TestClient) -> None:
    for _ in range(3):
        assert client.get("/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    assert client.post("/jobs", json={"data_root": ""}).status_code == 422
    assert client.get("/no/such/route").status_code == 404
    assert TestClient(client.app).post("/jobs", json={}).status_code == 401  # answered before routing

    families = scrape(client)
    name = "ocec_jobs_http_request_duration_seconds"
    assert value(families, f"{name}_count", method="GET", route="/jobs/{job_id}", status="404") == 3
    assert value(families, f"{name}_count", method="POST", route="/jobs", status="422") == 1
    assert value(families, f"{name}_count", method="GET", route="<unmatched>", status="404") == 1
    assert value(families, f"{name}_count", method="POST", route="/jobs", status="401") == 1
    assert (
        value(families, f"{name}_bucket", method="GET", route="/jobs/{job_id}", status="404", le="+Inf") == 3
    )
    routes = {s.labels["route"] for s in families[name]}
    assert not any("0123456789abcdef" in route for route in routes)  # templates, never ids


def test_metrics_need_a_key_and_a_viewer_may_read_them(anonymous: TestClient, make_key: KeyMaker) -> None:
    assert anonymous.get("/metrics").status_code == 401
    viewer = make_key("prometheus", Role.VIEWER)
    assert "ocec_jobs_jobs" in scrape(anonymous, viewer.headers)


def test_every_app_has_its_own_registry(api_settings: ApiSettings, client: TestClient) -> None:
    client.get("/jobs")
    with TestClient(create_app(api_settings.model_copy(update={"auth": "off"}))) as other:
        families = scrape(other)
    routes = {s.labels["route"] for s in families["ocec_jobs_http_request_duration_seconds"]}
    assert routes == set()  # the first app's requests are not counted here (this scrape is counted after)


@pytest.fixture
def unreadable_database(tmp_path: Path) -> Iterator[ApiSettings]:
    folder = tmp_path / "not-a-database"
    folder.mkdir()
    yield ApiSettings(home=tmp_path / "home", database_url=f"sqlite:///{folder}", auth="off")  # type: ignore[arg-type]


def test_a_scrape_answers_when_the_database_is_down(unreadable_database: ApiSettings) -> None:
    with TestClient(create_app(unreadable_database)) as client:
        families = scrape(client)
    assert value(families, "ocec_jobs_database_up") == 0
    assert "ocec_jobs_jobs" not in families


def test_disk_use_of_run_folders_and_uploads(client: TestClient, api_settings: ApiSettings) -> None:
    written = {
        api_settings.runs_root / ("a" * 32) / "last.pt": 700,
        api_settings.runs_root / ("a" * 32) / "epochs" / "epoch_0001.pt": 300,
        api_settings.runs_root / ("b" * 32) / "best.pt": 50,
        api_settings.model_root / "uploads" / "m" / "model.pt": 20,
        api_settings.data_root / "uploads" / "d" / "dataset.parquet": 5,
        api_settings.data_root / "not-an-upload.bin": 1000,  # the data root's own datasets are not counted
    }
    for path, size in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)

    families = scrape(client)

    assert value(families, "ocec_jobs_job_disk_bytes", job_id="a" * 32) == 1000
    assert value(families, "ocec_jobs_job_disk_bytes", job_id="b" * 32) == 50
    assert value(families, "ocec_jobs_disk_bytes", area="runs") == 1050
    assert value(families, "ocec_jobs_disk_bytes", area="uploads") == 25
