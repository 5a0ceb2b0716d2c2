"""A checkpoint that would run code when unpickled is refused, and the job fails saying so — end to end.

The job is submitted over HTTP (auth on), run by a real Celery worker with the real engine on the real
Redis and database. The payload would create a marker file; the tests prove it would (a twin file
loaded with ``weights_only=False`` does create its marker) and that through the service it never does,
neither as a pretrain file nor as the checkpoint a resume starts from. Also here: a path the API
accepted but that was swapped for a link out of its root before the worker ran is refused by the worker.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from worker_harness import Harness

from api.main import create_app
from api.settings import ApiSettings
from jobstore.db import write_transaction
from jobstore.kinds import CheckpointKind
from jobstore.repo import keys
from jobstore.states import AttemptOutcome
from ocec_engine.model import ModelConfig, OCECNet
from ocec_engine.synthetic import make_dataset
from tests.api.conftest import forget_queue
from tests.api.worker_sim import SimWorker

DATASET = "B"
N_IMAGES = 64
REFUSED = "needs pickle code execution"


class Payload:
    """Unpickling this calls ``exec``: it writes ``marker``. weights_only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('the payload ran')",))


def write_evil_checkpoint(path: Path, marker: Path) -> None:
    """A plausible checkpoint (real model weights) with the payload riding along."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = OCECNet(ModelConfig()).state_dict()
    torch.save({"model_state": state, "format_version": 1, "extra": Payload(marker)}, path)


@pytest.fixture
def service(real_harness: Harness) -> Iterator[tuple[Harness, TestClient]]:
    """The API on the harness's database and queue, with an operator key, and a dataset to train on."""
    h = real_harness
    settings = ApiSettings(
        home=h.settings.home,
        database_url=h.settings.database_url,
        broker_url=h.settings.broker_url,
        queue=h.settings.queue,
    )
    make_dataset(settings.data_root / DATASET, domain="B", n=N_IMAGES, seed=2)
    with write_transaction(h.db) as session:
        secret = keys.create_key(session, name="tester", role=keys.Role.OPERATOR).secret
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {secret}"}) as client:
        yield h, client
    forget_queue(h.settings.broker_url, h.settings.queue)


def job_body(**spec: Any) -> dict[str, Any]:
    return {"name": "unsafe", "data_root": DATASET, "epochs": 2, "batch_size": 32, "augment": "none", **spec}


def test_the_payload_is_live(tmp_path: Path) -> None:
    """Control: the same kind of file loaded without weights_only does run its payload."""
    marker = tmp_path / "control-marker"
    write_evil_checkpoint(tmp_path / "twin.pt", marker)

    torch.load(tmp_path / "twin.pt", weights_only=False)

    assert marker.read_text() == "the payload ran"


def test_an_unsafe_pretrain_fails_the_job_and_never_runs(
    service: tuple[Harness, TestClient], tmp_path: Path
) -> None:
    h, client = service
    marker = tmp_path / "pretrain-marker"
    write_evil_checkpoint(h.settings.model_root / "evil.pt", marker)
    h.start_worker()

    created = client.post("/jobs", json=job_body(pretrain="evil.pt"))
    assert created.status_code == 201, created.text
    job = h.wait_state(created.json()["id"], "failed", "succeeded", timeout=120)

    assert job.state == "failed"
    assert REFUSED in job.state_reason and "evil.pt" in job.state_reason
    status = client.get(f"/jobs/{job.id}").json()
    assert (status["state"], status["state_reason"]) == ("failed", job.state_reason)
    assert not marker.exists(), "the pickled payload ran"


def test_an_unsafe_resume_checkpoint_fails_the_job_and_never_runs(
    service: tuple[Harness, TestClient], tmp_path: Path
) -> None:
    h, client = service
    marker = tmp_path / "resume-marker"
    job_id = client.post("/jobs", json=job_body()).json()["id"]
    worker = SimWorker(h.db, job_id)  # an earlier attempt that wrote a checkpoint, then paused
    worker.claim()
    write_evil_checkpoint(h.settings.runs_root / job_id / "last.pt", marker)
    worker.checkpoint(f"{job_id}/last.pt", CheckpointKind.LAST, epoch=1)
    worker.finish(AttemptOutcome.PAUSED, reason="paused by operator")
    h.start_worker()  # takes the stale attempt-1 message (fenced off), then the resume

    resumed = client.post(f"/jobs/{job_id}/resume", json={"from": "last", "reason": "go on"})
    assert resumed.status_code == 202, resumed.text
    job = h.wait_state(job_id, "failed", "succeeded", timeout=120)

    assert job.state == "failed" and job.attempt == 2
    assert REFUSED in job.state_reason and "last.pt" in job.state_reason
    assert not marker.exists(), "the pickled payload ran"


def test_a_link_swapped_out_of_the_root_after_submission_is_refused_by_the_worker(
    service: tuple[Harness, TestClient], tmp_path: Path
) -> None:
    h, client = service
    data_root = h.settings.data_root
    shutil.copytree(data_root / DATASET, data_root / "real")
    (data_root / "current").symlink_to(data_root / "real")
    created = client.post("/jobs", json=job_body(data_root="current"))
    assert created.status_code == 201, created.text  # inside the root when the API checked it

    outside = tmp_path / "outside"
    shutil.copytree(data_root / DATASET, outside)
    (data_root / "current").unlink()
    (data_root / "current").symlink_to(outside)
    h.start_worker()
    job = h.wait_state(created.json()["id"], "failed", "succeeded", timeout=120)

    assert job.state == "failed"
    assert "data_root" in job.state_reason and "leaves its configured root" in job.state_reason
