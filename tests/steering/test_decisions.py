"""POST /jobs/{id}/decide through HTTP against a real worker and the real engine.

A job whose stage-2 gate (F1 0.95) fails with policy ``pause`` waits in ``awaiting_decision`` after
checkpointing; its status says why. One job then takes three decisions in a row — extend stage 1 by
one epoch (it trains it, reads the gate again and asks again), retry stage 1 from its entry with
another lr (the old epochs superseded; it asks again), proceed (stage 2 at lr x 0.05 with half the
backbone) — and a second job is stopped at its gate (succeeded, best .pt and .onnx exported). The
audit trail shows every read, decision and transition in order.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.steering.conftest import PRETRAIN
from tests.steering.expect import assert_problem, assert_stage_row, transitions
from tests.steering.stack import Steering

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
LR, RETRY_LR, GATE = 1e-3, 5e-4, 0.95
GATED: dict[str, Any] = {
    "data_root": "B", "pretrain": PRETRAIN, "epochs": 3, "batch_size": 16, "lr": LR, "augment": "none",
    "unfreeze_backbone_epoch": 2, "stage2": {"gate_f1": GATE, "on_gate_fail": "pause"},
}  # fmt: skip


def awaiting(s: Steering, job_id: str, gate_epoch: int) -> dict[str, Any]:
    """Wait for the pause at the stage-2 gate read before ``gate_epoch``; check what the status says."""
    status = s.wait_state(job_id, "awaiting_decision", "succeeded", "failed")
    assert status["state"] == "awaiting_decision", status["state_reason"]
    pending = status["pending_decision"]
    assert (pending["stage"], pending["epoch"], pending["threshold"]) == (2, gate_epoch, GATE)
    assert pending["f1"] < GATE and not pending["passed"] and pending["policy"] == "pause"
    assert pending["f1"] == pytest.approx(s.row(job_id, gate_epoch - 1)["val_f1"])  # the F1 it read
    assert [o["action"] for o in pending["options"]] == ["proceed", "extend", "retry", "stop"]
    assert pending["decide"] == f"/jobs/{job_id}/decide"
    assert status["epoch"] == gate_epoch - 1  # checkpointed at the boundary, nothing half-trained
    return status


def decide(s: Steering, job_id: str, body: dict[str, Any], by: str = "alice") -> dict[str, Any]:
    operator = s.alice if by == "alice" else s.bob
    response = operator.post(f"/jobs/{job_id}/decide", body)
    assert response.status_code == 202, response.text
    status = dict(response.json())
    assert (status["id"], status["state"]) == (job_id, "queued")
    return status


def test_extend_retry_then_proceed(steering: Steering) -> None:
    s = steering
    job_id = s.submit("gated", **GATED)
    awaiting(s, job_id, gate_epoch=2)
    assert_problem(
        s.alice.post(f"/jobs/{job_id}/stage", {"stage": 2, "reason": "r"}), 409, state="awaiting_decision"
    )
    for bad, field in (
        ({"action": "extend", "reason": "r"}, "epochs"),
        ({"action": "proceed", "lr": 0.1, "reason": "r"}, "lr"),
    ):
        problem = assert_problem(s.alice.post(f"/jobs/{job_id}/decide", bad), 422)
        assert [e["field"] for e in problem["errors"]] == [field]

    extended = decide(s, job_id, {"action": "extend", "epochs": 1, "reason": "one more stage-1 epoch"})
    assert (extended["epochs"], extended["spec"]["unfreeze_backbone_epoch"]) == (4, 3)  # budget +1, gate +1
    awaiting(s, job_id, gate_epoch=3)  # trained epoch 2 in stage 1, read the gate again, asked again
    assert [(r["epoch"], r["stage"], r["attempt"]) for r in s.metrics(job_id)] == [(1, 1, 1), (2, 1, 2)]

    decide(s, job_id, {"action": "retry", "lr": RETRY_LR, "reason": "stage 1 again, gentler"}, by="bob")
    awaiting(s, job_id, gate_epoch=3)
    live = s.metrics(job_id)
    assert [(r["epoch"], r["attempt"]) for r in live] == [(1, 3), (2, 3)]  # retrained from the entry
    for row in live:
        assert_stage_row(row, 1, {"head": RETRY_LR})
    old = [r for r in s.metrics(job_id, superseded=True) if r["superseded"]]
    assert [(r["epoch"], r["attempt"]) for r in old] == [(1, 1), (2, 2)]  # kept, marked, never mixed in
    assert s.events(job_id, "restored")[-1]["evidence"]["checkpoint"] == f"{job_id}/stage1_entry.pt"

    decide(s, job_id, {"action": "proceed", "reason": "0.6 is what this data gives"})
    done = s.wait_state(job_id, "succeeded", "failed")
    assert done["state"] == "succeeded", done["state_reason"]
    rows = s.metrics(job_id)
    assert [(r["epoch"], r["stage"]) for r in rows] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    for row in rows[2:]:  # stage 2 at the retried base lr x 0.05, the last half of the backbone
        assert_stage_row(row, 2, {"head": RETRY_LR * 0.05, "backbone": RETRY_LR * 0.05})
    [change] = transitions(s.events(job_id))
    assert (change["from_stage"], change["to_stage"], change["epoch"], change["evidence"]["trigger"]) == (
        1,
        2,
        3,
        "resume",
    )
    assert change["actor"] == s.alice.actor and "0.6 is what this data gives" in change["reason"]
    assert (done["stage"], done["stage_since_epoch"]) == (2, 3)
    assert_audit_trail(s, job_id)


def assert_audit_trail(s: Steering, job_id: str) -> None:
    """Every automatic read and operator decision, in order, each with its reason and evidence."""
    kinds = ("gate_check", "decision", "resume_requested", "restored", "metrics_superseded", "stage_change")
    trail = [
        e
        for e in s.events(job_id, *kinds, "state_change")
        if e["kind"] != "state_change" or e["to_state"] == "awaiting_decision"
    ]
    summary = [(e["kind"], e["evidence"].get("action")) for e in trail if e["kind"] != "stage_change"]
    asked = [("gate_check", "pause"), ("state_change", None)]  # read, failed, waiting for a decision
    assert summary == [
        ("restored", None), *asked,
        ("decision", "extend"), ("resume_requested", None), ("restored", None), *asked,
        ("decision", "retry"), ("resume_requested", None),
        ("metrics_superseded", None), ("restored", None), *asked,
        ("decision", "proceed"), ("resume_requested", None), ("restored", None),
    ]  # fmt: skip
    decisions = s.events(job_id, "decision")
    assert [(d["actor"], d["evidence"]["f1"] < GATE, d["evidence"]["threshold"]) for d in decisions] == [
        (s.alice.actor, True, GATE), (s.bob.actor, True, GATE), (s.alice.actor, True, GATE),
    ]  # fmt: skip
    assert [d["evidence"]["from"] for d in decisions] == ["last", "stage:1", "last"]
    assert all(e["reason"] for e in trail)


def test_stop_ends_the_job_with_the_best_model_exported(steering: Steering) -> None:
    s = steering
    job_id = s.submit("gated-stop", **GATED)
    before = awaiting(s, job_id, gate_epoch=2)

    decide(s, job_id, {"action": "stop", "reason": "stage 1 is all this data supports"})
    done = s.wait_state(job_id, "succeeded", "failed")

    assert done["state"] == "succeeded"
    assert done["state_reason"].startswith(f"stopped by {s.alice.actor} at the stage-2 gate")
    assert (
        "stage 1 is all this data supports" in done["state_reason"]
        and "exported to ONNX" in done["state_reason"]
    )
    assert (done["epoch"], done["epochs"], done["best_epoch"]) == (
        1,
        before["epochs"],
        1,
    )  # nothing more trained
    assert [r["epoch"] for r in s.metrics(job_id, superseded=True)] == [1]
    kinds = {c["kind"]: c for c in s.alice.http.get(f"/jobs/{job_id}/checkpoints").json()}
    assert {"best", "onnx"} <= set(kinds)
    for name in ("best.pt", "best.onnx"):
        artifact = s.alice.http.get(f"/jobs/{job_id}/artifacts/{name}")
        assert artifact.status_code == 200 and len(artifact.content) > 1000
    [decision] = s.events(job_id, "decision")
    assert (decision["evidence"]["action"], decision["actor"]) == ("stop", s.alice.actor)
    assert_problem(
        s.alice.post(f"/jobs/{job_id}/decide", {"action": "stop", "reason": "again"}), 409, state="succeeded"
    )
