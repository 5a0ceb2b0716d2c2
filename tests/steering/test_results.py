"""Honest results through the service (HTTP, a real worker running the real engine): an optional
stage 3 whose gate stays shut ends ``succeeded`` with a note, and its gate is first read after one
stage-2 epoch; the status reports model A's score as the baseline; a fork continues the parent's run
in a new folder, with its overrides recorded as changes and a best.pt and best.onnx of its own."""

from __future__ import annotations

import pytest

from tests.steering.conftest import PRETRAIN
from tests.steering.stack import Steering

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
SPEC = {
    "data_root": "B", "pretrain": PRETRAIN, "epochs": 2, "batch_size": 32, "lr": 1e-3, "augment": "none",
    "stage": 2, "stage3": {"gate_f1": 1.0},  # no run here reaches val F1 1.0
}  # fmt: skip


def test_a_shut_optional_stage_succeeds_and_a_fork_records_its_changes(steering: Steering) -> None:
    s = steering
    job_id = s.submit("shut-stage3", **SPEC)
    done = s.wait_state(job_id, "succeeded", "failed")

    assert done["state"] == "succeeded", done["state_reason"]
    assert "optional stage 3 not entered" in done["state_reason"]
    assert [(r["epoch"], r["stage"]) for r in s.metrics(job_id)] == [(1, 2), (2, 2)]
    checks = s.events(job_id, "gate_check")
    reads = [(e["epoch"], e["evidence"]["stage"], e["evidence"]["action"]) for e in checks]
    assert reads == [(2, 3, "wait")]  # not at epoch 1: the start evaluation is no stage-2 epoch
    [restored] = s.events(job_id, "restored")
    model_a = restored["evidence"]["initial_metrics"]
    baseline = done["baseline"]
    assert (baseline["f1"], baseline["val_loss"]) == (model_a["f1"], pytest.approx(model_a["loss"]))
    assert isinstance(baseline["beaten"], bool)
    assert ("no epoch beat the starting weights" in done["state_reason"]) is not baseline["beaten"]

    body = {"from": "epoch:1", "name": "child", "epochs": 3, "lr": 5e-4, "reason": "gentler from epoch 1"}
    created = s.alice.post(f"/jobs/{job_id}/fork", body)
    assert created.status_code == 201, created.text
    child_id = created.json()["id"]
    child = s.wait_state(child_id, "succeeded", "failed")

    assert child["state"] == "succeeded", child["state_reason"]
    [change] = [e for e in s.events(child_id, "stage_change") if e["evidence"].get("changes")]
    assert change["evidence"]["changes"] == {"epochs": {"from": 2, "to": 3}, "lr": {"from": 1e-3, "to": 5e-4}}
    assert change["reason"].startswith("settings changed on resume: epochs 2 -> 3, lr 0.001 -> 0.0005")
    assert (change["from_stage"], change["to_stage"], change["epoch"]) == (2, 2, 2)
    kinds = {c["kind"]: c for c in s.alice.http.get(f"/jobs/{child_id}/checkpoints").json()}
    assert (kinds["best"]["path"], kinds["onnx"]["path"]) == (f"{child_id}/best.pt", f"{child_id}/best.onnx")
    for name in ("best.pt", "best.onnx"):  # a new folder, with best files of its own
        artifact = s.alice.http.get(f"/jobs/{child_id}/artifacts/{name}")
        assert artifact.status_code == 200 and len(artifact.content) > 1000
