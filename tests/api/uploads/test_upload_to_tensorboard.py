"""The whole path for a curl user: upload model A and dataset B over HTTP (auth on), submit a job that
names them, a real Celery worker runs the real engine on them, and the job's TensorBoard event files
hold exactly the metrics the database recorded — read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "worker"))  # the worker harness

from worker_harness import Harness, make_harness

from ocec_engine.synthetic import make_dataset

MODEL_A = Path("/work/shared/fixtures/ocec_reference/ocec_ref_cosface_epoch0012.pt")
EPOCHS, UNFREEZE = 3, 2


@pytest.fixture
def harness(
    tmp_path: Path, db_url: str, migrated_engine: Engine, redis_url: str, unique_queue: str
) -> Iterator[Harness]:
    h = make_harness(
        tmp_path,
        db_url,
        redis_url,
        unique_queue,
        migrated_engine,
        OCEC_ENGINE="ocec_engine:train",
        OMP_NUM_THREADS="1",
    )  # fmt: skip  (same home and queue as the API's settings: tests/api/conftest.py)
    yield h
    h.stop_workers()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_uploaded_model_and_dataset_train_and_tensorboard_matches_the_database(
    http: httpx.Client, harness: Harness, tmp_path: Path
) -> None:
    parquet = make_dataset(tmp_path / "B", domain="B", n=96, seed=2)
    with MODEL_A.open("rb") as handle:
        model = http.post("/models", files={"file": ("ocec_A.pt", handle)})
    with parquet.open("rb") as handle:
        dataset = http.post("/datasets", files={"file": ("B.parquet", handle)})
    assert model.status_code == dataset.status_code == 201, (model.text, dataset.text)
    harness.start_worker()

    spec = {
        "name": "from-uploads", **model.json()["use_as"], **dataset.json()["use_as"],
        "epochs": EPOCHS, "unfreeze_backbone_epoch": UNFREEZE, "batch_size": 32, "lr": 1e-3,
        "augment": "none", "margin_method": "cosface", "stage2": {"gate_f1": 0.0},
    }  # fmt: skip
    created = http.post("/jobs", json=spec)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    job = harness.wait_state(job_id, "succeeded", "failed", timeout=240)

    assert job.state == "succeeded", job.state_reason
    [restored] = harness.events(job_id, "restored")
    assert len(restored.evidence["pretrain_report"]["loaded"]) == 62  # model A's weights were used
    rows = harness.metrics(job_id)
    assert [(m.epoch, m.stage) for m in rows] == [(1, 1), (2, 2), (3, 2)]

    events = EventAccumulator(
        str(harness.settings.runs_root / job_id / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0}
    )
    events.Reload()
    scalars = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    for row in rows:
        expected = {
            "loss/train": row.train_loss, "loss/val": row.val_loss, "f1/val": row.val_f1,
            "precision/val": row.val_precision, "recall/val": row.val_recall,
            "accuracy/val": row.val_accuracy,
            "fisher/val": row.fisher_ratio, "trainable_params": row.trainable_params,
            "epoch_seconds": row.epoch_seconds, "stage": row.stage, f"f1/val_stage{row.stage}": row.val_f1,
            **{f"lr/{group}": lr for group, lr in row.lrs.items()},
        }  # fmt: skip
        for tag, value in expected.items():
            assert scalars[tag][row.epoch] == pytest.approx(value, rel=1e-6, abs=1e-7), (tag, row.epoch)
    assert set(scalars["f1/val_stage1"]) == {1} and set(scalars["f1/val_stage2"]) == {2, 3}

    texts = {
        tag: {e.step: tensor_util.make_ndarray(e.tensor_proto)[0].decode() for e in events.Tensors(tag)}
        for tag in events.Tags()["tensors"]
    }
    assert "stage 1 -> 2" in texts["events/stage_change"][UNFREEZE]
    assert "passed" in texts["events/gate_check"][UNFREEZE]
    assert texts["run/end"][EPOCHS].startswith("completed")
