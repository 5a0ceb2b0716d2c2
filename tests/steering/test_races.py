"""Commands racing the epoch boundary and the end of the job, through HTTP against a real worker.

Where a command lands inside an epoch is aimed, not controlled: the tests wait for an epoch's row,
then send after a fraction of the measured epoch time (its last batches) or at once (the boundary).
Whatever the timing, the assertions are the invariants: a force applies exactly once, at a boundary
(the epoch it arrived in is entirely in the old stage, the next entirely in the new one), and a
command that meets the end of the job is applied, or refused / expired with a recorded reason — never
lost, never left pending.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.steering.conftest import PRETRAIN
from tests.steering.expect import assert_stage_row, command_events, fates, transitions
from tests.steering.stack import Operator, Steering

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
LR = 1e-3
LONG_EPOCHS: dict[str, Any] = {  # ~110 batches per epoch on B600: time to aim into an epoch
    "data_root": "B600", "pretrain": PRETRAIN, "batch_size": 4, "lr": LR, "augment": "light",
}  # fmt: skip
STAGE3 = {"unfreeze_ratio": 1.0, "lr_factor": 0.025, "gate_f1": 1.0, "epoch": 999}  # only by hand
LATE = 0.8  # aim at the last fifth of an epoch (epoch 1 also validates, so this often lands after it)
EARLY = 0.3  # aim inside the epoch: a pause or cancel lands while it still trains


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def send_together(*requests: tuple[Operator, str, dict[str, Any]]) -> list[httpx.Response]:
    """Send the requests at the same moment (one thread each)."""
    with ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(op.post, path, body) for op, path, body in requests]
        return [f.result() for f in futures]


def applied_once(s: Steering, job_id: str, responses: list[httpx.Response], stage: int) -> dict[str, Any]:
    """The requests for ``stage`` became one command, applied once; the others joined it or were
    refused (409) because it had already applied. Returns its command_applied event."""
    stored = [r.json()["command"] for r in responses if r.status_code == 202]
    assert len(stored) == 1, [r.text for r in responses]
    command_id = stored[0]["id"]
    for response in responses:
        if response.status_code == 200:
            assert response.json()["merged"] and response.json()["command"]["id"] == command_id
        elif response.status_code == 409:
            assert response.json()["command"]["status"] == "refused"
            assert f"already in stage {stage}" in response.json()["detail"]
        else:
            assert response.status_code == 202
    applied = s.wait_event(job_id, "command_applied", lambda e: e["command_id"] == command_id)
    assert fates(s.events(job_id), command_id) == ["command_applied"]
    return applied


def assert_boundary(s: Steering, job_id: str, applied: dict[str, Any], stage: int) -> None:
    """Applied at the start of an epoch, after it was delivered: the epoch before ran entirely in
    the previous stage, the epoch it names entirely in the new one."""
    epoch = applied["epoch"]
    delivered = next(
        e for e in command_events(s.events(job_id), applied["command_id"]) if e["kind"] == "command_delivered"
    )
    change = next(e for e in transitions(s.events(job_id)) if e["to_stage"] == stage)
    assert (change["epoch"], change["command_id"]) == (epoch, applied["command_id"])
    assert at(delivered["at"]) <= at(change["at"])
    before, first = s.row(job_id, epoch - 1), s.row(job_id, epoch)
    assert (before["stage"], first["stage"]) == (stage - 1, stage)
    assert at(before["recorded_at"]) <= at(change["at"])  # the previous epoch had ended when it applied
    assert applied["evidence"]["val_f1"] == pytest.approx(before["val_f1"])


def test_forces_sent_in_the_last_batches_and_at_the_boundary_apply_once(steering: Steering) -> None:
    s = steering
    job_id = s.submit("race-boundary", epochs=30, stage3=STAGE3, **LONG_EPOCHS)  # cancelled when seen
    first = s.wait_row(job_id, 1)
    time.sleep(first["epoch_seconds"] * LATE)  # into the last batches of epoch 2
    to_two = send_together(
        (s.alice, f"/jobs/{job_id}/stage", {"stage": 2, "reason": "late in the epoch"}),
        (s.bob, f"/jobs/{job_id}/stage", {"stage": 2, "reason": "me too"}),
    )
    applied_two = applied_once(s, job_id, to_two, 2)
    s.wait_row(job_id, applied_two["epoch"])  # the boundary after the first stage-2 epoch: send now
    to_three = send_together(
        (s.alice, f"/jobs/{job_id}/stage", {"stage": 3, "reason": "at the boundary"}),
        (s.bob, f"/jobs/{job_id}/stage", {"stage": 3, "reason": "at the boundary too"}),
    )
    applied_three = applied_once(s, job_id, to_three, 3)
    s.wait_row(job_id, applied_three["epoch"])
    assert s.alice.post(f"/jobs/{job_id}/cancel", {"reason": "seen both"}).status_code == 202
    assert s.wait_state(job_id, "cancelled", "failed")["state"] == "cancelled"

    assert_boundary(s, job_id, applied_two, 2)
    assert_boundary(s, job_id, applied_three, 3)
    assert [(t["from_stage"], t["to_stage"]) for t in transitions(s.events(job_id))] == [(1, 2), (2, 3)]
    for row in s.metrics(job_id):
        if row["epoch"] < applied_two["epoch"]:
            assert_stage_row(row, 1, {"head": LR})
        elif row["epoch"] < applied_three["epoch"]:
            assert_stage_row(row, 2, {"head": LR * 0.05, "backbone": LR * 0.05})
        else:
            assert_stage_row(row, 3, {"head": LR * 0.025, "backbone": LR * 0.025})


@pytest.mark.parametrize(
    ("stop", "aim"),
    [("pause", EARLY), ("pause", LATE), ("cancel", EARLY), ("cancel", LATE)],
    ids=["pause-mid", "pause-end", "cancel-mid", "cancel-end"],
)
def test_commands_sent_as_the_last_epoch_ends_are_settled(steering: Steering, stop: str, aim: float) -> None:
    s = steering
    job_id = s.submit(f"race-end-{stop}", epochs=2, **LONG_EPOCHS)
    first = s.wait_row(job_id, 1)
    time.sleep(first["epoch_seconds"] * aim)  # into the last epoch (EARLY) or its last batches (LATE)
    answers = send_together(
        (s.alice, f"/jobs/{job_id}/stage", {"stage": 2, "reason": "just in time?"}),
        (s.bob, f"/jobs/{job_id}/{stop}", {"reason": "just in time?"}),
    )
    done = s.wait_state(job_id, "succeeded", "paused", "cancelled", "failed")
    late = s.alice.post(f"/jobs/{job_id}/{stop}", {"reason": "after the end"})

    assert done["state"] in ("succeeded", "paused" if stop == "pause" else "cancelled"), done["state_reason"]
    events = s.events(job_id)
    for answer in answers:
        if answer.status_code == 409:  # the job had already finished: refused at once, with a reason
            assert answer.json()["state"] == done["state"] and answer.json()["detail"]
            continue
        assert answer.status_code == 202, answer.text
        command_id = answer.json()["command"]["id"]
        [fate] = fates(events, command_id)  # exactly one end, none left pending
        [settled] = [e for e in command_events(events, command_id) if e["kind"] == fate]
        assert settled["evidence"]["result"]
    assert all(r["stage"] == 1 for r in s.metrics(job_id))  # a force that met the end never applied
    assert late.status_code == 409
    if done["state"] == "paused":  # the interrupted epoch finishes on resume; the force does not return
        resumed = s.alice.post(f"/jobs/{job_id}/resume", {"reason": "finish it"})
        assert resumed.status_code == 202, resumed.text
        assert s.wait_state(job_id, "succeeded", "failed")["state"] == "succeeded"
        assert [(r["epoch"], r["stage"]) for r in s.metrics(job_id)] == [(1, 1), (2, 1)]
        assert transitions(s.events(job_id)) == []
