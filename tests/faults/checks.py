"""What every fault test asserts at the end, against the uninterrupted reference run of the same spec.

- the job ``succeeded``; its lease is released; every attempt but the last ended (lost, preempted)
  and the last one completed;
- exactly one live metrics row per epoch, 1..epochs: no gap, no duplicate;
- the stage history equals the reference: the stage of every epoch, and the stage-change events
  (from, to, epoch, trigger) — a transition replayed after a crash would show up here twice;
- the validation F1 of every epoch and the best F1 equal the reference's: the engine resumes exactly
  on CPU (same weights, optimizer, schedule and RNG position), so no tolerance is needed beyond
  float printing; a mismatch means a resume did not restore what it said it did;
- the files the database points at (last, best, stage entries, ONNX) exist and have the recorded
  sha256 — no stale attempt overwrote them after they were recorded.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from tests.faults.figures import FIGURES, JobTally
from tests.faults.harness import FaultHarness

F1_TOLERANCE = 1e-12  # bit-identical in practice; the tolerance only absorbs JSON/float round trips
CHECKED_KINDS = ("last", "best", "stage_entry", "onnx")


def stage_history(fx: FaultHarness, job_id: str) -> list[tuple[Any, ...]]:
    return [
        (e.from_stage, e.to_stage, e.epoch, e.evidence.get("trigger"))
        for e in fx.events(job_id, "stage_change")
    ]


def assert_like_reference(fx: FaultHarness, job_id: str) -> None:
    """The end-of-test contract (see the module docstring); also tallies the job for the figures."""
    job = fx.job(job_id)
    ref = fx.world.epochs
    live = fx.metrics(job_id)
    every = fx.metrics(job_id, live=False)
    counts = Counter(m.epoch for m in live)
    expected = list(range(1, len(ref) + 1))
    lost = len([e for e in expected if counts[e] == 0])
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    history = stage_history(fx, job_id)
    ref_history = [(s.from_stage, s.to_stage, s.epoch, s.trigger) for s in fx.world.stages]
    same_f1 = len(live) == len(ref) and all(
        m.val_f1 is not None and abs(m.val_f1 - r["val_f1"]) <= F1_TOLERANCE
        for m, r in zip(live, ref, strict=False)
    )
    attempts = fx.attempts(job_id)
    FIGURES.job(
        JobTally(
            fx.scenario, job_id, job.state, len(ref), len(live), lost, duplicated, len(every) - len(live),
            len(attempts), matches_reference=same_f1 and history == ref_history, reason=job.state_reason,
        )
    )  # fmt: skip
    fx.measure_recoveries()

    assert job.state == "succeeded", f"{job.state}: {job.state_reason}\n{fx.logs()}"
    assert (lost, duplicated) == (0, 0), f"lost {lost}, duplicated {duplicated}: {sorted(counts.items())}"
    assert [m.epoch for m in live] == expected
    assert [m.stage for m in live] == [r["stage"] for r in ref], "each epoch's stage"
    assert history == ref_history, "stage-change events"
    assert same_f1, [(m.epoch, m.val_f1, r["val_f1"]) for m, r in zip(live, ref, strict=False)]
    assert job.best_f1 is not None and abs(job.best_f1 - max(r["val_f1"] for r in ref)) <= F1_TOLERANCE
    assert_consistent_end(fx, job_id)
    assert_files_match_records(fx, job_id)


def assert_consistent_end(fx: FaultHarness, job_id: str) -> None:
    """A finished job holds no lease, and each attempt has ended with an outcome."""
    job = fx.job(job_id)
    assert job.lease_owner is None and job.lease_expires_at is None, "lease released"
    assert job.finished_at is not None
    attempts = fx.attempts(job_id)
    assert [a.number for a in attempts] == list(range(1, job.attempt + 1))
    assert all(a.ended_at is not None and a.outcome for a in attempts), [
        (a.number, a.outcome) for a in attempts
    ]
    if job.state == "succeeded":
        assert attempts[-1].outcome == "completed", attempts[-1].reason


def assert_files_match_records(fx: FaultHarness, job_id: str) -> None:
    for record in fx.checkpoints(job_id):
        if record.superseded or record.kind not in CHECKED_KINDS or record.sha256 is None:
            continue
        path = fx.settings.runs_root / record.path
        assert path.is_file(), f"{record.kind} {record.path} recorded but missing"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == record.sha256, (
            f"{record.path} changed after it was recorded (attempt {record.attempt})"
        )


def tally_failed(fx: FaultHarness, job_id: str) -> None:
    """Count a job that failed on purpose (bad input, exhausted budget) in the figures."""
    job = fx.job(job_id)
    rows = len(fx.metrics(job_id))
    attempts = len(fx.attempts(job_id))
    tally = JobTally(
        fx.scenario, job_id, job.state, job.epoch, rows, 0, 0, 0, attempts, False, job.state_reason
    )
    FIGURES.job(tally)
