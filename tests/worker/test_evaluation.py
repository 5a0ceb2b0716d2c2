"""Evaluations run by the worker with the fake evaluator: on a real Celery worker and broker (the task
claims the row, stores the report or the engine's reason; the worker's reaper sends a lost message and
re-queues a run whose pool child was killed), and in-process for the path rules and duplicate
messages on both databases."""

from __future__ import annotations

import os
import signal

import pytest
from celery import Celery
from fake_evaluator import SLOW_MARKER
from worker_harness import Harness, wait_for

from jobstore.db import read_session, write_transaction
from jobstore.models import Evaluation
from jobstore.repo.evaluations import ModelRoot, NewEvaluation, create_evaluation
from jobstore.tasknames import TASK_RUN_EVALUATION
from worker.evaluation import EVALUATOR_ENV, run_evaluation

FAKE = "fake_evaluator:evaluate_to_dir"


def _create(harness: Harness, data: str, model: str = "model.pt", split: str = "test") -> str:
    new = NewEvaluation(
        name="e", owner="", source={}, model_root=ModelRoot.MODEL, model_path=model, data_path=data,
        split=split, threshold_rule="fixed", threshold_target=0.4, top_k=3,
    )  # fmt: skip
    with write_transaction(harness.db) as session:
        return create_evaluation(session, new=new).id


def _send(harness: Harness, *ids: str) -> None:
    app = Celery("ocec-test-publisher", broker=harness.settings.broker_url, set_as_current=False)
    try:
        for evaluation_id in ids:
            app.send_task(TASK_RUN_EVALUATION, args=(evaluation_id,), queue=harness.settings.queue)
    finally:
        app.close()


def _row(harness: Harness, evaluation_id: str) -> Evaluation:
    with read_session(harness.db) as session:
        evaluation = session.get(Evaluation, evaluation_id)
    assert evaluation is not None
    return evaluation


def _finished(harness: Harness, evaluation_id: str) -> Evaluation | None:
    evaluation = _row(harness, evaluation_id)
    return evaluation if evaluation.state in ("succeeded", "failed") else None


def _broken(harness: Harness) -> str:
    (harness.settings.model_root / "model.pt").write_bytes(b"weights")
    harness.dataset("broken")
    (harness.settings.data_root / "broken" / "fail_evaluation").write_text("")
    return "broken"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database rules: the test below
def test_a_celery_worker_runs_evaluations_and_stores_what_they_found(harness: Harness) -> None:
    good, bad = _create(harness, "setB"), _create(harness, _broken(harness))
    harness.start_worker(**{EVALUATOR_ENV: FAKE})

    _send(harness, good, bad)

    done = {i: wait_for(lambda i=i: _finished(harness, i), 60, f"evaluation {i}") for i in (good, bad)}
    assert done[good].state == "succeeded", done[good].state_reason
    report = done[good].report
    assert (report["data"]["split"], report["threshold"]["rule"]) == ("test", "fixed")
    assert len(report["worst"]) == 3
    assert done[good].progress == {"done": 40, "total": 40}
    assert done[good].worker.startswith(harness.workers[0].name)
    folder = harness.settings.runs_root / "evaluations" / good
    assert (folder / "worst.png").is_file() and (folder / "worst" / "2.png").is_file()
    assert done[bad].state == "failed" and "fail_evaluation" in done[bad].state_reason


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database rules: tests/jobstore
def test_the_reaper_sends_a_lost_message_and_requeues_a_killed_run(harness: Harness) -> None:
    (harness.settings.model_root / "model.pt").write_bytes(b"weights")
    harness.dataset("slowB")
    (harness.settings.data_root / "slowB" / SLOW_MARKER).write_text("1.0")
    lost_message = _create(harness, "setB")  # created, never sent: the broker was down at the POST
    env = {EVALUATOR_ENV: FAKE, "OCEC_REDISPATCH_AFTER_SECONDS": "1"}
    worker = harness.start_worker(reaper=True, **env)

    sent = wait_for(lambda: _finished(harness, lost_message), 30, "the lost message's evaluation")
    assert (sent.state, sent.attempt, sent.lost) == ("succeeded", 1, [])

    killed = _create(harness, "slowB")
    _send(harness, killed)
    running = wait_for(lambda: (r := _row(harness, killed)).progress and r.pid and r, 30, "a running pid")
    os.kill(running.pid, signal.SIGKILL)  # mid-run: the main process forks a fresh pool child

    done = wait_for(lambda: _finished(harness, killed), 45, "the re-queued evaluation")
    assert done.state == "succeeded", done.state_reason
    assert done.attempt == 2 and done.pid not in (None, running.pid)
    [lost] = done.lost
    assert (lost["attempt"], lost["pid"], lost["worker"]) == (1, running.pid, running.worker)
    assert "lease expired" in lost["why"] and done.worker.startswith(worker.name)
    assert done.progress == {"done": 40, "total": 40}


def test_paths_are_confined_again_and_a_duplicate_runs_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EVALUATOR_ENV, FAKE)
    (harness.settings.model_root / "model.pt").write_bytes(b"weights")
    outside = harness.settings.home / "outside.pt"
    outside.write_bytes(b"x")
    (harness.settings.model_root / "link.pt").symlink_to(outside)  # made after the API's check
    good, escaped = _create(harness, "setB"), _create(harness, "setB", "link.pt")
    run = {"settings": harness.settings, "worker": "inproc@host"}

    assert run_evaluation(good, **run) == "succeeded"
    first = _row(harness, good)
    assert run_evaluation(good, **run) == "skipped"  # a message delivered twice
    assert _row(harness, good).finished_at == first.finished_at
    assert run_evaluation(escaped, **run) == "failed"
    assert "leaves its configured root" in _row(harness, escaped).state_reason
    assert not (harness.settings.runs_root / "evaluations" / escaped / "report.json").exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_real_engine_scores_through_the_worker_path(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default evaluator (``ocec_engine.evaluation``; skipped where the engine lacks it) on a tiny
    parquet dataset and a small seeded checkpoint: the stored report follows the contract."""
    pytest.importorskip("ocec_engine.evaluation")
    torch = pytest.importorskip("torch")
    from ocec_engine.model import ModelConfig, build_model
    from ocec_engine.synthetic import make_dataset

    monkeypatch.delenv(EVALUATOR_ENV, raising=False)
    make_dataset(harness.settings.data_root / "realB", domain="B", n=24, seed=3)
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_channels=8, num_blocks=2))
    state = {"model_state": model.state_dict(), "model_config": model.config.to_dict()}
    torch.save(state, harness.settings.model_root / "model.pt")
    evaluation_id = _create(harness, "realB", split="all")  # a parquet without test rows

    assert run_evaluation(evaluation_id, settings=harness.settings, worker="inproc@host") == "succeeded"
    row = _row(harness, evaluation_id)
    report = row.report
    assert report["schema"] == 1 and report["data"]["samples"] == 24 == row.progress["total"]
    assert len(report["sweep"]) == 101 and report["threshold"]["rule"] == "fixed"
    assert {"roc", "pr"} <= set(report["curves"]) and len(report["worst"]) <= 3
    folder = harness.settings.runs_root / row.out_dir
    assert (folder / "worst.png").is_file()
    assert all((folder / "worst" / f"{i}.png").is_file() for i in range(len(report["worst"])))
