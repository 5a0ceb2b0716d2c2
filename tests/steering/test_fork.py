"""POST /jobs/{id}/fork through HTTP against a real worker: a new job starts from the forced job's
stage-1 end (the epoch before it entered stage 2) with other stage-2 settings — the whole backbone
at its own lr — linked to its parent. Decision recorded here: the child's metrics begin with a copy of
the parent's rows up to the fork point (tagged ``extra.inherited_from``), so the two runs line up for
comparison; its own epochs continue from the checkpoint's epoch."""

from __future__ import annotations

import pytest

from tests.steering.conftest import Forced
from tests.steering.expect import FULL_TRAINABLE, assert_stage_row, transitions
from tests.steering.stack import Steering

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
CHILD_LR = 2e-5


def test_fork_at_the_stage_boundary_with_other_stage2_settings(steering: Steering, forced: Forced) -> None:
    s, parent_id = steering, forced.job_id
    point = forced.applied["epoch"] - 1  # the last stage-1 epoch of the parent
    body = {
        "from": f"epoch:{point}", "name": "whole-backbone", "stage": 2, "epochs": point + 2,
        "reason": "does thawing everything beat half?", "stage2": {"unfreeze_ratio": 1.0, "lr": CHILD_LR},
    }  # fmt: skip

    parent_lr = s.status(parent_id)["spec"]["lr"]  # the resume test may have changed it (shared job)
    created = s.alice.post(f"/jobs/{parent_id}/fork", body, key="fork-whole")
    replay = s.alice.post(f"/jobs/{parent_id}/fork", body, key="fork-whole")

    assert created.status_code == 201, created.text
    child = created.json()
    assert (replay.status_code, replay.json()["id"]) == (200, child["id"])
    fork_from = child["fork_from"]
    assert (child["parent_job_id"], fork_from["job_id"], fork_from["from"]) == (
        parent_id,
        parent_id,
        f"epoch:{point}",
    )
    assert (fork_from["epoch"], fork_from["stage"]) == (point, 1)
    assert fork_from["checkpoint"] == f"{parent_id}/epochs/epoch_{point:04d}.pt"
    assert child["spec"]["stage2"]["unfreeze_ratio"] == 1.0 and child["spec"]["lr"] == parent_lr
    listed = s.alice.http.get("/jobs", params={"parent": parent_id}).json()["data"]
    assert [j["id"] for j in listed] == [child["id"]]
    assert [f["id"] for f in s.status(parent_id)["forks"]] == [child["id"]]
    [forked] = s.events(parent_id, "forked")
    assert (forked["actor"], forked["evidence"]["child_job_id"]) == (s.alice.actor, child["id"])

    done = s.wait_state(child["id"], "succeeded", "failed")
    assert done["state"] == "succeeded", done["state_reason"]
    rows = s.metrics(child["id"])
    assert [r["epoch"] for r in rows] == list(range(1, point + 3))
    parent_rows = {r["epoch"]: r for r in s.metrics(parent_id, superseded=True) if r["attempt"] == 1}
    for row in rows[:point]:  # the parent's history up to the fork point, copied and tagged
        assert row["extra"]["inherited_from"] == parent_id
        assert row["val_f1"] == parent_rows[row["epoch"]]["val_f1"] and row["stage"] == 1
    for row in rows[point:]:  # its own epochs: the whole backbone at the child's stage-2 lr
        assert "inherited_from" not in row["extra"]
        assert_stage_row(row, 2, {"head": CHILD_LR, "backbone": CHILD_LR}, trainable=FULL_TRAINABLE)
        assert row["extra"]["frozen_units"] == []
    [change] = transitions(s.events(child["id"]))
    assert (change["to_stage"], change["epoch"], change["evidence"]["trigger"]) == (2, point + 1, "resume")
    assert change["actor"] == s.alice.actor and change["evidence"]["ratio_achieved"] == 1.0
    [restored] = s.events(child["id"], "restored")
    assert restored["evidence"]["matches"] and restored["evidence"]["checkpoint"] == fork_from["checkpoint"]
