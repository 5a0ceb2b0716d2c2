"""POST /jobs/{id}/stage through HTTP against a real worker and the real engine: the force applies
once, at an epoch boundary, with who / why / when / the F1 recorded; a second request for the same
stage is merged while the first is open and refused (recorded) once the job is in that stage; the
next epoch trains exactly what stage 2 means (lr x 0.05, head + last half of the backbone)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.steering.conftest import Forced
from tests.steering.expect import (
    STAGE2_TRAINABLE,
    assert_problem,
    assert_stage_row,
    command_events,
    transitions,
)
from tests.steering.stack import Steering

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
LR = 1e-3


def test_force_stage_is_stored_once_and_merges_a_second_request(steering: Steering, forced: Forced) -> None:
    first, replay, merged = forced.first.json(), forced.replay.json(), forced.merged.json()
    command = first["command"]

    assert forced.first.status_code == 202
    assert (command["kind"], command["params"], command["actor"]) == (
        "force_stage", {"stage": 2}, steering.alice.actor,
    )  # fmt: skip
    assert (forced.replay.status_code, replay["command"]["id"], replay["merged"]) == (
        200,
        command["id"],
        False,
    )
    assert (forced.merged.status_code, merged["command"]["id"], merged["merged"]) == (
        200,
        command["id"],
        True,
    )
    log = command_events(steering.events(forced.job_id), command["id"])
    kinds = [(e["kind"], e["actor"]) for e in log]
    assert kinds[0] == ("command_requested", steering.alice.actor)
    assert kinds[-1] == ("command_applied", steering.alice.actor)
    assert sorted(kinds[1:-1]) == [  # the worker may hand it over before or after bob asks
        ("command_delivered", steering.alice.actor),
        ("command_merged", steering.bob.actor),  # bob's request is in the audit trail, joined to alice's
    ]
    [merge] = [e for e in log if e["kind"] == "command_merged"]
    assert merge["reason"] == "me too" and merge["evidence"]["merged_into"] == command["id"]


def test_force_stage_applies_at_the_next_boundary_with_its_evidence(
    steering: Steering, forced: Forced
) -> None:
    applied = forced.applied
    epoch = applied["epoch"]  # the first epoch trained in stage 2
    before = steering.row(forced.job_id, epoch - 1)

    assert epoch > forced.sent_after_epoch  # never before the epoch it was sent during
    # The first boundary after the commit (the stack's heartbeat is 60 s: only the engine's own check
    # brings it in): the epoch running then + 1, or + 2 if that boundary had just been read.
    committed = datetime.fromisoformat(applied["evidence"]["requested_at"])
    rows = steering.metrics(forced.job_id)
    done = max((r["epoch"] for r in rows if datetime.fromisoformat(r["recorded_at"]) < committed), default=0)
    assert epoch in (done + 1, done + 2)
    evidence = applied["evidence"]
    assert (applied["actor"], applied["reason"]) == (steering.alice.actor, "stage-1 F1 is as good as it gets")
    assert evidence["val_f1"] == pytest.approx(before["val_f1"])  # the F1 at that moment
    assert datetime.fromisoformat(evidence["requested_at"]) < datetime.fromisoformat(evidence["applied_at"])
    assert evidence["result"] == f"stage 2 from epoch {epoch}"
    [change] = transitions(steering.events(forced.job_id))
    assert (change["from_stage"], change["to_stage"], change["epoch"]) == (1, 2, epoch)
    assert (change["evidence"]["trigger"], change["actor"]) == ("forced", steering.alice.actor)
    assert change["command_id"] == applied["command_id"]
    assert change["evidence"]["trainable_params"] == STAGE2_TRAINABLE
    status = steering.status(forced.job_id)
    assert (status["stage"], status["stage_since_epoch"]) == (2, epoch)
    assert status["stage_reason"].startswith(f"forced by {steering.alice.actor}")


def test_the_epochs_train_what_the_operator_asked_for(steering: Steering, forced: Forced) -> None:
    epoch = forced.applied["epoch"]
    rows = steering.metrics(forced.job_id)

    assert len({r["epoch"] for r in rows}) == len(rows) and rows[0]["epoch"] == 1
    for row in rows:
        if row["epoch"] < epoch:
            assert_stage_row(row, 1, {"head": LR})
        else:
            assert_stage_row(row, 2, {"head": LR * 0.05, "backbone": LR * 0.05})


def test_a_force_the_job_cannot_take_is_refused_and_recorded(steering: Steering, forced: Forced) -> None:
    again = assert_problem(forced.again, 409, job_id=forced.job_id, state="running")
    unconfigured = assert_problem(forced.unconfigured, 409, job_id=forced.job_id, state="running")

    assert again["command"]["status"] == "refused"
    assert "already in stage 2; stage 2 is not ahead" in again["detail"]
    assert "stage 3 is not configured" in unconfigured["detail"]
    refused = steering.events(forced.job_id, "command_refused")
    assert [(e["command_id"], e["actor"]) for e in refused] == [
        (again["command"]["id"], steering.bob.actor),
        (unconfigured["command"]["id"], steering.bob.actor),
    ]
    assert refused[0]["evidence"]["stage"] == 2 and refused[0]["reason"] == "is it in stage 2 yet?"


def test_finished_and_unknown_jobs_answer_problems(steering: Steering, forced: Forced) -> None:
    alice, body = steering.alice, {"stage": 2, "reason": "too late"}
    assert forced.cancel.status_code == 202

    for path in ("stage", "pause"):
        answer = alice.post(f"/jobs/{forced.job_id}/{path}", body if path == "stage" else {"reason": "x"})
        assert_problem(answer, 409, job_id=forced.job_id, state="cancelled")
    unknown = "0" * 32
    problem = assert_problem(alice.post(f"/jobs/{unknown}/stage", body), 404, job_id=unknown)
    assert problem["type"] == "urn:ocec-jobs:problem:not-found"
