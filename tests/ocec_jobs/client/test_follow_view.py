"""What ``follow`` shows on a terminal: the progress bar's stage, F1 and loss; lines for transitions."""

from __future__ import annotations

import json

import pytest

from ocec_jobs.cli.client.exitcodes import Exit
from ocec_jobs.cli.client.follow import FollowView
from ocec_jobs.client.sse import Message

STATUS = {"id": "j1", "name": "hq", "epochs": 4, "stage": 1, "state": "running"}


def metric(epoch: int, stage: int, f1: float) -> Message:
    data = {
        "epoch": epoch,
        "stage": stage,
        "val_f1": f1,
        "val_loss": 0.25,
        "train_loss": 0.3,
        "epoch_seconds": 1.0,
    }
    return Message("metric", json.dumps(data), str(epoch * 10))


STAGE = Message(
    "stage_change",
    json.dumps(
        {
            "from_stage": 1,
            "to_stage": 2,
            "epoch": 3,
            "reason": "val F1 0.85 >= 0.8",
            "evidence": {"trigger": "gate", "lrs": {"head": 5e-6}},
        }
    ),
    "25",
)
END = Message("end", json.dumps({"state": "succeeded", "state_reason": "epoch budget reached"}), None)


def test_on_a_terminal_a_bar_carries_stage_f1_and_loss(capsys: pytest.CaptureFixture[str]) -> None:
    view = FollowView(STATUS, as_json=False, progress=True)
    for message in (metric(1, 1, 0.5), metric(2, 1, 0.85), STAGE, metric(3, 2, 0.9)):
        assert view.show(message) is None
    assert view.show(END) == Exit.OK

    out, err = capsys.readouterr()
    assert "stage 1 -> 2 at epoch 3 (gate): val F1 0.85 >= 0.8 | lr head 5e-06" in out
    assert out.splitlines()[-1] == "succeeded: epoch budget reached"
    assert "epoch 1/4" not in out  # epochs go to the bar, not to lines
    assert "hq s2" in err and "f1=0.9000" in err and "loss=0.2500" in err and "3/4" in err


def test_json_lines_and_exit_codes_of_final_states(capsys: pytest.CaptureFixture[str]) -> None:
    view = FollowView(STATUS, as_json=True, progress=True)
    view.show(metric(1, 1, 0.5))
    assert view.show(Message("end", json.dumps({"state": "cancelled"}), None)) == Exit.JOB_CANCELLED
    out, err = capsys.readouterr()
    assert [json.loads(line)["event"] for line in out.splitlines()] == ["metric", "end"] and err == ""
    failed = FollowView(STATUS, as_json=True, progress=False)
    assert failed.show(Message("end", json.dumps({"state": "failed"}), None)) == Exit.JOB_FAILED
