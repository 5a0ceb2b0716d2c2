"""POST /jobs/{id}/resume by hand through HTTP against a real worker: the cancelled forced job
continues as the same job from its stage-2 entry checkpoint with a new lr and epoch budget; the worker
confirms what it restored (attempt row via the status, a ``restored`` event), the epochs past the
checkpoint are superseded (kept, never duplicated) and the new epochs run at the new stage-2 lr. A
job that failed (its dataset went away) resumes from an epoch once the data is back. (Paused: the
completion races; awaiting_decision: the decisions; interrupted jobs take the same path, see
tests/faults.)"""

from __future__ import annotations

import pytest

from ocec_engine.synthetic import make_dataset
from tests.steering.conftest import PRETRAIN, Forced
from tests.steering.expect import assert_problem, assert_stage_row
from tests.steering.stack import Steering

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
NEW_LR = 2e-3


def test_resume_from_a_stage_entry_with_a_new_lr_and_budget(steering: Steering, forced: Forced) -> None:
    s, job_id = steering, forced.job_id
    entered = forced.applied["epoch"]  # stage 2 began here; stage2_entry.pt holds epoch entered - 1
    before = s.status(job_id)
    abandoned = [r["epoch"] for r in s.metrics(job_id) if r["epoch"] >= entered]
    budget = entered + 1
    body = {"from": "stage:2", "lr": NEW_LR, "epochs": budget, "reason": "stage 2 again, faster"}

    response = s.bob.post(f"/jobs/{job_id}/resume", body)

    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["id"], queued["state"], queued["attempt"]) == (job_id, "queued", before["attempt"] + 1)
    assert (queued["resume_from"]["from"], queued["resume_from"]["epoch"]) == ("stage:2", entered - 1)
    again = assert_problem(s.bob.post(f"/jobs/{job_id}/resume", body), 409, job_id=job_id)
    assert again["state"] in {"queued", "running"}  # a free worker may claim it between the two posts
    done = s.wait_state(job_id, "succeeded", "failed")
    assert done["state"] == "succeeded", done["state_reason"]

    restore = done["restore"]  # the worker's confirmation, from the attempt row
    assert (restore["attempt"], restore["stage"], restore["epoch"], restore["batch"]) == (
        before["attempt"] + 1, 2, entered - 1, 0,
    )  # fmt: skip
    assert restore["checkpoint"] == f"{job_id}/stage2_entry.pt" and restore["requested"] == "stage:2"
    [restored] = s.events(job_id, "restored")[-1:]
    assert restored["evidence"]["matches"] and (restored["stage"], restored["epoch"]) == (2, entered - 1)
    [superseded] = s.events(job_id, "metrics_superseded")
    assert superseded["evidence"]["epochs"] == abandoned

    live, every = s.metrics(job_id), s.metrics(job_id, superseded=True)
    assert [r["epoch"] for r in live] == list(range(1, budget + 1))  # one live row per epoch
    old = [r for r in every if r["superseded"]]
    assert [r["epoch"] for r in old] == abandoned and {r["attempt"] for r in old} == {before["attempt"]}
    for row in live[entered - 1 :]:
        assert row["attempt"] == before["attempt"] + 1
        assert_stage_row(row, 2, {"head": NEW_LR * 0.05, "backbone": NEW_LR * 0.05})
    assert (done["stage"], done["stage_since_epoch"], done["epoch"], done["epochs"]) == (
        2,
        entered,
        budget,
        budget,
    )
    assert done["stage_reason"].startswith("forced by")  # why it is in stage 2, carried over the restore
    lr_change = [e for e in s.events(job_id, "stage_change") if e["evidence"].get("new_lr")]
    assert [(e["actor"], e["evidence"]["new_lr"]) for e in lr_change] == [
        (s.bob.actor, pytest.approx(NEW_LR * 0.05))
    ]


def test_a_failed_job_resumes_from_an_epoch_once_its_data_is_back(steering: Steering) -> None:
    s = steering
    data = s.harness.settings.data_root
    make_dataset(data / "Bf", domain="B", n=128, seed=2)
    spec = {
        "data_root": "Bf",
        "pretrain": PRETRAIN,
        "epochs": 12,
        "batch_size": 16,
        "lr": 1e-3,
        "augment": "light",
    }
    job_id = s.submit("fails-then-resumes", **spec)
    s.wait_row(job_id, 1)
    assert s.alice.post(f"/jobs/{job_id}/pause", {"reason": "maintenance"}).status_code == 202
    paused = s.wait_state(job_id, "paused", "succeeded")
    assert paused["state"] == "paused", paused["state_reason"]
    (data / "Bf").rename(data / "Bf.unmounted")  # the dataset volume goes away

    assert s.alice.post(f"/jobs/{job_id}/resume", {"reason": "maintenance over"}).status_code == 202
    failed = s.wait_state(job_id, "failed", "succeeded")
    assert failed["state"] == "failed" and "data_root 'Bf' not found" in failed["state_reason"]
    (data / "Bf.unmounted").rename(data / "Bf")
    budget = paused["epoch"] + 2
    body = {"from": "epoch:1", "lr": 5e-4, "epochs": budget, "reason": "data is back; from epoch 1, gentler"}
    assert s.bob.post(f"/jobs/{job_id}/resume", body).status_code == 202
    done = s.wait_state(job_id, "succeeded", "failed")

    assert done["state"] == "succeeded", done["state_reason"]
    assert (done["restore"]["epoch"], done["restore"]["stage"], done["restore"]["requested"]) == (
        1,
        1,
        "epoch:1",
    )
    rows = s.metrics(job_id)
    assert [r["epoch"] for r in rows] == list(range(1, budget + 1))
    for row in rows[1:]:
        assert_stage_row(row, 1, {"head": 5e-4})
    superseded = [r["epoch"] for r in s.metrics(job_id, superseded=True) if r["superseded"]]
    assert superseded == list(range(2, paused["epoch"] + 1))  # what the paused run did past epoch 1
    states = [(e["from_state"], e["to_state"]) for e in s.events(job_id, "state_change")]
    assert states[-7:] == [
        ("running", "paused"), ("paused", "queued"), ("queued", "running"), ("running", "failed"),
        ("failed", "queued"), ("queued", "running"), ("running", "succeeded"),
    ]  # fmt: skip
