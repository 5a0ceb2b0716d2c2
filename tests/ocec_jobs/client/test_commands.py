"""``ocec-jobs`` client commands as real subprocesses against a real uvicorn server and a real Celery
worker (fake engine): submit and follow a progressive job, steer it, download, upload, and the exit
codes of every outcome and every error (docs/cli.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from jobstore.db import write_transaction
from jobstore.repo import create_job
from jobstore.spec import JobCreate
from ocec_jobs.cli.client.exitcodes import Exit
from tests.api.dashboard.proxy import CuttableProxy
from tests.ocec_jobs.client.conftest import CLIENT_ENV, Stack, wait_for

MODEL_A = Path("/work/shared/fixtures/ocec_reference/ocec_ref_cosface_epoch0012.pt")
PARQUET = Path("/work/shared/fixtures/ocec_reference/dataset.parquet")
CLIENT_COMMANDS = (
    "submit", "list", "status", "follow", "stage", "decide", "resume", "fork", "pause", "cancel", "download",
    "upload-model", "upload-dataset", "evaluate",
)  # fmt: skip


def submitted(stack: Stack, *argv: str) -> str:
    done = stack.cli("submit", "--json", *argv)
    assert done.code == Exit.OK, done.err
    job = json.loads(done.out)
    assert job["state"] == "queued"
    return str(job["id"])


def test_submit_follow_shows_the_stage_transition_and_exits_0(stack: Stack) -> None:
    data = stack.dataset("gate-opens", f1=[0.5, 0.85, 0.9], epoch_seconds=0.2)
    done = stack.cli("submit", "--data-root", data, "--name", "cli-follow", "--epochs", "4",
                     "--unfreeze-backbone-epoch", "2", "--gate-f1", "0.8", "--follow")  # fmt: skip

    assert done.code == Exit.OK, done.err
    lines = done.out.splitlines()
    assert lines[0].startswith("following job ") and "(cli-follow)" in lines[0]
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/4", "2/4", "3/4", "4/4"]
    gate_failed = next(i for i, line in enumerate(lines) if "gate to stage 2 before epoch 2" in line)
    transition = next(i for i, line in enumerate(lines) if line.startswith("stage 1 -> 2 at epoch 3 (gate)"))
    assert "not passed" in lines[gate_failed] and gate_failed < transition
    assert "epoch 3/4 stage 2" in lines[transition + 1]  # printed as it happened: before epoch 3's row
    assert lines[-1].startswith("succeeded:")


def test_json_output_parses_and_follow_json_ends_with_the_end_event(stack: Stack) -> None:
    job_id = submitted(
        stack, "--data-root", stack.dataset("json", f1=[0.9], epoch_seconds=0.05), "--epochs", "2"
    )

    followed = stack.cli("follow", job_id, "--json")
    status = stack.cli("status", job_id, "--json")
    listing = stack.cli("list", "--json", "--state", "succeeded")
    every_page = stack.cli("list", "--json", "--all", "--limit", "1")
    one_page = stack.cli("list", "--json", "--limit", "500")

    assert followed.code == Exit.OK, followed.err
    messages = [json.loads(line) for line in followed.out.splitlines()]
    assert messages[-1]["event"] == "end" and messages[-1]["data"]["state"] == "succeeded"
    assert [m["data"]["epoch"] for m in messages if m["event"] == "metric"] == [1, 2]
    assert all(m["id"] for m in messages[:-1])  # every message but the end carries its event id
    assert json.loads(status.out)["state"] == "succeeded"
    assert job_id in {job["id"] for job in json.loads(listing.out)}
    all_ids = [job["id"] for job in json.loads(every_page.out)]  # followed page by page, one job each
    assert all_ids == [job["id"] for job in json.loads(one_page.out)] and job_id in all_ids


def test_a_failed_job_exits_1_and_a_cancelled_one_7(stack: Stack) -> None:
    failing = submitted(stack, "--data-root", stack.dataset("fails", fail={"kind": "crash", "epoch": 2}),
                        "--epochs", "3")  # fmt: skip
    done = stack.cli("follow", failing)
    assert done.code == Exit.JOB_FAILED, done.err
    assert done.out.splitlines()[-1].startswith("failed:")

    slow = submitted(stack, "--data-root", stack.dataset("slow", epoch_seconds=0.5), "--epochs", "40")
    stack.wait_state(slow, "running")
    cancel = stack.cli("cancel", slow, "--reason", "enough")
    assert cancel.code == Exit.OK and "command cancel" in cancel.out
    assert stack.cli("follow", slow).code == Exit.JOB_CANCELLED


def test_a_gate_that_waits_for_a_person_exits_8_then_decide_follows_to_the_end(stack: Stack) -> None:
    data = stack.dataset("gate-fails", f1=[0.5], epoch_seconds=0.05)
    job_id = submitted(stack, "--data-root", data, "--epochs", "4", "--unfreeze-backbone-epoch", "2",
                       "--on-gate-fail", "pause")  # fmt: skip

    waiting = stack.cli("follow", job_id)
    assert waiting.code == Exit.JOB_WAITING, waiting.err
    assert "awaiting_decision" in waiting.out and f"ocec-jobs decide {job_id}" in waiting.out

    decided = stack.cli("decide", job_id, "proceed", "--reason", "F1 0.5 is fine for a test", "--follow")
    assert decided.code == Exit.OK, decided.err
    assert "stage 1 -> 2 at epoch 2" in decided.out and "decision by cli-user" in decided.out


def test_pause_resume_stage_and_fork(stack: Stack) -> None:
    data = stack.dataset("steer", f1=[0.5], epoch_seconds=0.3)
    job_id = submitted(stack, "--data-root", data, "--epochs", "30", "--unfreeze-backbone-epoch", "20")
    stack.wait_state(job_id, "running")

    forced = stack.cli("stage", job_id, "2", "--reason", "skip the gate")
    assert forced.code == Exit.OK and "command force_stage" in forced.out
    wait_for(lambda: stack.harness.events(job_id, "stage_change"), 30, "the forced stage")
    assert stack.cli("pause", job_id, "--reason", "lunch").code == Exit.OK
    budget = str(stack.wait_state(job_id, "paused").epoch + 2)  # two more epochs, wherever it paused
    again = stack.cli("resume", job_id, "--epochs", budget, "--unfreeze-backbone-epoch", budget, "--follow")
    assert again.code == Exit.OK, again.err
    assert again.out.splitlines()[-1].startswith("succeeded:")

    fork = stack.cli("fork", job_id, "--from", "best", "--name", "child", "--gate-f1", "0.6", "--json")
    assert fork.code == Exit.OK, fork.err
    child = json.loads(fork.out)
    assert (
        child["parent_job_id"] == job_id
        and child["name"] == "child"
        and child["spec"]["stage2"]["gate_f1"] == 0.6
    )
    stack.cli("cancel", child["id"])


def test_download_artifacts_and_the_plot(stack: Stack, tmp_path: Path) -> None:
    job_id = submitted(
        stack, "--data-root", stack.dataset("dl", f1=[0.9], epoch_seconds=0.05), "--epochs", "2"
    )
    assert stack.cli("follow", job_id).code == Exit.OK

    best = stack.cli("download", job_id, "best.pt", "-o", str(tmp_path / "best.pt"), "--json")
    plot = stack.cli("download", job_id, "plot.png", "-o", str(tmp_path / "curves.png"))
    again = stack.cli("download", job_id, "best.pt", "-o", str(tmp_path / "best.pt"))
    missing = stack.cli("download", job_id, "nothing.pt", "-o", str(tmp_path / "n.pt"))

    assert best.code == Exit.OK, best.err
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.operator}"}) as http:
        assert (tmp_path / "best.pt").read_bytes() == http.get(f"/jobs/{job_id}/artifacts/best.pt").content
    assert json.loads(best.out)["bytes"] == (tmp_path / "best.pt").stat().st_size
    assert plot.code == Exit.OK and (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert again.code == Exit.USAGE and "--force" in again.err
    assert missing.code == Exit.REFUSED and not (tmp_path / "n.pt").exists() and "404" in missing.err


def test_uploads_and_a_job_that_names_them(stack: Stack) -> None:
    model = stack.cli("upload-model", str(MODEL_A), "--json")
    dataset = stack.cli("upload-dataset", str(PARQUET))
    assert model.code == dataset.code == Exit.OK, (model.err, dataset.err)
    model_id = json.loads(model.out)["id"]
    assert 'use in a job: {"data_root": "uploads/' in dataset.out
    dataset_id = dataset.out.split()[1]

    job = json.loads(stack.cli("submit", "--json", "--pretrain", f"upload:{model_id}", "--data-root",
                               f"upload:{dataset_id}", "--epochs", "1").out)  # fmt: skip
    assert job["spec"]["pretrain"] == json.loads(model.out)["path"]
    assert job["spec"]["data_root"] == f"uploads/{dataset_id}"
    stack.cli("cancel", job["id"])
    unknown = stack.cli("submit", "--data-root", "upload:0123456789abcdef0123456789abcdef")
    assert unknown.code == Exit.REFUSED and "data_root: upload" in unknown.err


def test_errors_are_one_line_with_their_exit_code(stack: Stack, tmp_path: Path) -> None:
    down = stack.cli("list", url="http://127.0.0.1:9")
    no_key = stack.cli("list", key=None)
    wrong_key = stack.cli("list", key="ocec_not-a-key")
    viewer = stack.cli("submit", "--data-root", "x", key="viewer")
    unknown = stack.cli("status", "0123456789abcdef0123456789abcdef")
    invalid = stack.cli("submit", "--data-root", stack.dataset("v"), "--lr", "5")
    bad_file = stack.cli("submit", "--spec", str(tmp_path / "missing.json"))

    assert (down.code, no_key.code, wrong_key.code, viewer.code) == (3, 4, 4, 4)
    assert (unknown.code, invalid.code, bad_file.code) == (5, 5, 2)
    assert "cannot reach the ocec-jobs server at http://127.0.0.1:9" in down.err
    assert "OCEC_API_KEY" in no_key.err and "OCEC_API_KEY" in wrong_key.err and "403" in viewer.err
    assert "lr" in invalid.err and "422" in invalid.err
    for result in (down, no_key, wrong_key, viewer, unknown, invalid, bad_file):
        assert result.out == "" and result.err.count("\n") == 1 and "Traceback" not in result.err
        assert result.err.startswith("ocec-jobs: ")


def test_help_lists_the_client_commands(stack: Stack) -> None:
    done = stack.cli("--help", key=None)
    assert done.code == 0
    for command in CLIENT_COMMANDS:
        assert f"    {command}" in done.out


def test_a_cut_stream_is_resumed_without_losing_or_repeating_an_event(stack: Stack) -> None:
    job_id = submitted(
        stack, "--data-root", stack.dataset("cut", f1=[0.9], epoch_seconds=0.3), "--epochs", "6"
    )
    host, port = stack.url.removeprefix("http://").split(":")
    proxy = CuttableProxy((host, int(port)))
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    env |= {"OCEC_URL": proxy.url, "OCEC_API_KEY": stack.operator}
    command = [sys.executable, "-m", "ocec_jobs.cli.main", "follow", job_id, "--json"]
    try:
        with subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as follow:
            assert follow.stdout is not None
            lines = [follow.stdout.readline()]
            while '"metric"' not in lines[-1]:
                lines.append(follow.stdout.readline())
            proxy.cut()  # mid-job: the open stream drops
            out, err = follow.communicate(timeout=120)
    finally:
        proxy.close()

    assert follow.returncode == Exit.OK, err
    assert "stream cut; reconnecting" in err
    messages = [json.loads(line) for line in [*lines, *out.splitlines()] if line.strip()]
    ids = [m["id"] for m in messages if m["id"]]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=int)  # nothing repeated, in order
    assert [m["data"]["epoch"] for m in messages if m["event"] == "metric"] == [1, 2, 3, 4, 5, 6]
    assert messages[-1]["event"] == "end"


def test_stored_control_and_bidi_characters_print_as_visible_escapes(stack: Stack) -> None:
    """A row stored before they were refused (or written by another source) cannot drive a terminal."""
    with write_transaction(stack.harness.db) as session:
        job = create_job(session, create=JobCreate(name="legacy", data_root="setB")).job
        job.name = "old\x1b]0;pwned\x07\u202egpj.exe"
        job.state, job.state_reason = "failed", "boom\r\x1b[2Ksucceeded"
        session.add(job)
        job_id = job.id

    shown = {command: stack.cli(command, *args) for command, args in
             (("list", ()), ("status", (job_id,)), ("follow", (job_id,)))}  # fmt: skip

    for done in shown.values():
        assert not {"\x1b", "\x07", "\r", "\u202e"} & set(done.out), done.out
        assert "old\\x1b]0;pwned\\x07\\u202egpj.exe" in done.out
    assert "boom\\x0d\\x1b[2Ksucceeded" in shown["status"].out
    assert shown["follow"].out.splitlines()[-1] == "failed: boom\\x0d\\x1b[2Ksucceeded"


# ---- evaluate (the stack's worker scores with the fake evaluator) --------------------------------
def test_evaluate_waits_and_prints_the_summary_or_the_reason(stack: Stack) -> None:
    stack.dataset("evalB")
    (stack.harness.settings.model_root / "a.pt").write_bytes(b"weights")

    done = stack.cli("evaluate", "--model", "a.pt", "--data", "evalB", "--split", "test",
                     "--threshold", "0.4", "--top-k", "2", "--wait", "--poll", "0.2")  # fmt: skip

    assert done.code == 0, done.err
    first, *rest = done.out.splitlines()
    assert first.split()[2] == "succeeded" and "data evalB (test)" in first
    assert any(line.strip().startswith("at 0.5: F1 0.") for line in rest)
    assert "threshold rule fixed" in done.out

    stack.dataset("evalBroken")
    (stack.harness.settings.data_root / "evalBroken" / "fail_evaluation").write_text("")
    failed = stack.cli("evaluate", "--model", "a.pt", "--data", "evalBroken", "--wait", "--json")
    assert failed.code == 1
    assert "fail_evaluation" in json.loads(failed.out)["state_reason"]


def test_evaluate_refusals_name_the_flag_and_viewers_cannot(stack: Stack) -> None:
    missing = stack.cli("evaluate", "--model", "nope.pt", "--data", "evalB")
    assert missing.code == 5 and "model.path" in missing.err
    queued = stack.cli("evaluate", "--model", "nope.pt", "--data", "evalB", key="viewer")
    assert queued.code == 4
    assert stack.cli("evaluate", "--artifact", "last", "--model", "x", "--data", "y").code == 2


def test_submit_race_then_race_shows_the_leaderboard_and_stops_it(stack: Stack) -> None:
    data = stack.dataset("race", f1=[0.5], epoch_seconds=0.3)
    candidates = '[{"name": "guide"}, {"name": "whole", "stage2": {"lr_factor": 1.0, "unfreeze_ratio": 1.0}}]'
    job_id = submitted(
        stack, "--data-root", data, "--epochs", "30", "--unfreeze-backbone-epoch", "20", "--race",
        "--race-rungs", "22,25", "--set", f"race.candidates={candidates}",
    )  # fmt: skip
    shown = stack.cli("race", job_id)
    assert shown.code == Exit.OK, shown.err
    assert f"race {job_id}: stage1" in shown.out and "rungs [22, 25]" in shown.out
    assert "guide" in shown.out and "whole" in shown.out
    stopped = stack.cli("race", job_id, "--stop", "--reason", "enough", "--json")
    assert stopped.code == Exit.OK, stopped.err
    assert {e["status"] for e in json.loads(stopped.out)["leaderboard"]} == {"cut"}
    assert stack.cli("race", job_id, "--promote", "guide").code == Exit.REFUSED  # not a live race
    status = stack.cli("status", job_id)
    # the race service settles a stopped race (racing until it passes): either is the race's own state
    assert status.code == Exit.OK
    assert re.search(rf"^  race +(racing|stopped): ocec-jobs race {job_id}$", status.out, re.MULTILINE)
