"""A tiny progressive fine-tune with the real engine, through a real Celery worker on the real Redis.

Synthetic domain A trains a model A in-process; the job fine-tunes it on the shifted domain B with a
low stage-2 gate so that stage 2 happens: stage 1 → 2 recorded once, a live metrics row per epoch,
the best .pt and the .onnx export on disk and recorded. The worker's main process never loads torch.

Each test runs on one database, not both: minutes of real training each, and the database code
they go through is tested on both backends by the jobstore and API tests. The plain job runs on
SQLite (what ``ocec-jobs up`` uses), the preempted one on PostgreSQL (where workers on several
machines share a queue).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from worker_harness import Harness

from ocec_engine import train
from ocec_engine.config import TrainConfig
from ocec_engine.synthetic import make_dataset

N_IMAGES = 160


def one_database(name: str) -> pytest.MarkDecorator:
    """Run on ``name``'s database only (overrides the parametrized ``db_url`` of tests/conftest.py)."""
    marks = [pytest.mark.postgres] if name == "postgres" else []
    return pytest.mark.parametrize("db_url", [pytest.param(name, marks=marks)], indirect=True)


BATCH = 64
EPOCHS = 3
UNFREEZE = 2


@pytest.fixture(scope="module")
def model_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained for two epochs on domain A (the pretrain of the job)."""
    root = tmp_path_factory.mktemp("model-a")
    make_dataset(root / "A", domain="A", n=N_IMAGES, seed=1)
    config = TrainConfig(
        data_root=str(root / "A"), output_dir=str(root / "run"), epochs=2, batch_size=BATCH, lr=1e-3,
        freeze_backbone=False, augment="none", device="cpu",  # type: ignore[arg-type]
    )  # fmt: skip
    result = train(TrainConfig.from_dict(config.to_dict()))
    assert result.best_checkpoint is not None
    return Path(result.best_checkpoint)


def _setup(h: Harness, model_a: Path) -> None:
    """Model A in the model root, domain B in the data root."""
    shutil.copy(model_a, h.settings.model_root / "ocec_A_best.pt")
    make_dataset(h.settings.data_root / "B", domain="B", n=N_IMAGES, seed=2)


def _submit(h: Harness, name: str, **spec: object) -> str:
    """A progressive fine-tune of model A on B whose stage-2 gate (F1 >= 0) always opens."""
    values = {
        "data_root": "B", "pretrain": "ocec_A_best.pt", "epochs": EPOCHS, "batch_size": BATCH, "lr": 1e-3,
        "unfreeze_backbone_epoch": UNFREEZE, "augment": "none", "margin_method": "cosface",
        "stage2": {"gate_f1": 0.0, "lr_factor": 0.05}, **spec,
    }  # fmt: skip
    return h.create(name=name, **values)


@one_database("sqlite")
def test_progressive_job_through_a_real_worker(real_harness: Harness, model_a: Path) -> None:
    h = real_harness
    _setup(h, model_a)
    worker = h.start_worker()

    job_id = _submit(h, "progressive")
    job = h.wait_state(job_id, "succeeded", "failed", timeout=120)

    assert job.state == "succeeded", job.state_reason
    rows = h.metrics(job_id)
    assert [(m.epoch, m.stage) for m in rows] == [(1, 1), (2, 2), (3, 2)]
    assert all(m.val_f1 is not None and m.lrs and m.trainable_params for m in rows)
    assert rows[1].trainable_params > rows[0].trainable_params  # half the backbone thawed
    start, *transitions = h.events(job_id, "stage_change")
    assert (start.from_stage, start.to_stage, start.evidence["trigger"]) == (None, 1, "start")
    [change] = transitions  # stage 2 entered exactly once
    assert (change.from_stage, change.to_stage, change.epoch) == (1, 2, UNFREEZE)
    assert change.evidence["trigger"] == "gate" and change.evidence["unfrozen"]
    records = {c.kind: c for c in h.checkpoints(job_id)}
    assert {"last", "best", "stage_entry", "onnx"} <= set(records)
    for path in (job.best_checkpoint, job.onnx_path):
        assert path is not None and (h.settings.runs_root / path).is_file()
    assert job.onnx_path.endswith(".onnx") and records["onnx"].path == job.onnx_path
    assert job.best_f1 == max(m.val_f1 for m in rows if m.val_f1 is not None)

    maps = Path(f"/proc/{worker.pid}/maps").read_text()
    assert "libtorch" not in maps and "libcuda" not in maps  # the parent never loaded torch


@one_database("postgres")
def test_sigterm_mid_job_resumes_exactly_on_another_worker(real_harness: Harness, model_a: Path) -> None:
    h = real_harness
    _setup(h, model_a)
    first = h.start_worker()
    job_id = _submit(h, "preempted", epochs=4, batch_size=BATCH // 2)
    h.wait_epoch(job_id, 1, timeout=90)

    assert first.stop(timeout=60) == 0
    assert h.job(job_id).state == "queued"
    second = h.start_worker()
    job = h.wait_state(job_id, "succeeded", "failed", timeout=120)

    assert job.state == "succeeded", job.state_reason
    preempted, finished = h.attempts(job_id)
    assert preempted.outcome == "preempted" and finished.worker.startswith(second.name)
    restored = h.events(job_id, "restored")[-1]
    assert restored.evidence["matches"], restored.reason  # the engine restored what the job asked for
    assert [m.epoch for m in h.metrics(job_id)] == [1, 2, 3, 4]
    assert h.metrics(job_id, live=False) == h.metrics(job_id)  # no replayed epoch
    entered = [
        e for e in h.events(job_id, "stage_change") if e.evidence["trigger"] in ("gate", "policy", "forced")
    ]
    assert [(e.from_stage, e.to_stage) for e in entered] == [(1, 2)]  # once, across the restart
