"""Bad data and bad runs: each job ends ``failed`` once, with a reason that names the file or field and
says what to do; it is never retried automatically; the database is consistent (lease released,
attempt ended ``failed``, checkpoint records match their files, no half-written file left); and a
job running beside it on another worker is untouched (it ends exactly like the reference).

- a corrupt dataset (one image row is not an image),
- a missing pretrain (it existed when the API accepted the job, then was deleted),
- a pretrain that does not fit the model (other channel counts),
- NaN loss (a pretrain holding NaN weights: the first batch's loss is NaN, for real),
- a full disk (a tiny tmpfs on the job's run directory: a checkpoint write hits ENOSPC); then the
  operator frees space and resumes, and the job finishes exactly like the reference.
"""

from __future__ import annotations

import time

import httpx
import pytest

from jobstore.db import write_transaction
from jobstore.repo.resume import request_resume
from tests.faults.bad_inputs import (
    CORRUPT_ROW,
    can_mount,
    corrupt_dataset,
    grow_disk,
    nan_pretrain,
    narrow_pretrain,
    tiny_disk,
)
from tests.faults.checks import (
    assert_consistent_end,
    assert_files_match_records,
    assert_like_reference,
    tally_failed,
)
from tests.faults.harness import FaultHarness
from tests.faults.world import DATASET, PRETRAIN, SPEC

REAPER_PASSES = 3  # seconds of reaper passes (every 0.5 s) that must leave a failed job alone


def test_bad_inputs_fail_once_with_their_reason_beside_a_good_job(fx: FaultHarness) -> None:
    roots = fx.settings
    corrupt = corrupt_dataset(roots.data_root / DATASET, roots.data_root / "B-corrupt")
    narrow_pretrain(roots.model_root / "A-narrow.pt")
    nan_pretrain(roots.model_root / PRETRAIN, roots.model_root / "A-nan.pt")
    (roots.model_root / "A-deleted.pt").write_bytes((roots.model_root / PRETRAIN).read_bytes())

    fx.start_worker("w-good", reaper=True)
    good = fx.submit("good")
    api = fx.start_api()
    refused = httpx.post(f"{api.base}/jobs", json={**SPEC, "pretrain": "nowhere.pt"}, timeout=30)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "pretrain"
    accepted = httpx.post(
        f"{api.base}/jobs", json={**SPEC, "name": "gone", "pretrain": "A-deleted.pt"}, timeout=30
    )
    assert accepted.status_code == 201, accepted.text
    (roots.model_root / "A-deleted.pt").unlink()  # deleted after the API checked it
    bad = {  # kind: (job, what its reason must say)
        "corrupt-data": (
            fx.submit("corrupt-data", data_root="B-corrupt"),
            [str(corrupt), f"row {CORRUPT_ROW}", "cannot decode image"],
        ),
        "missing-pretrain": (
            accepted.json()["id"],
            ["pretrain 'A-deleted.pt' not found", "A-deleted.pt does not exist"],
        ),
        "narrow-pretrain": (
            fx.submit("narrow", pretrain="A-narrow.pt"),
            ["A-narrow.pt", "stem.0.weight: checkpoint [16, 3, 3, 3] vs model [32, 3, 3, 3]"],
        ),
        "nan-loss": (
            fx.submit("nan", pretrain="A-nan.pt"),
            ["non-finite training loss", "A-nan.pt hold NaN/inf in features.0.depthwise.0.weight"],
        ),
    }
    for kind, (job_id, _) in bad.items():
        fx.record(kind, job_id, "submitted", bad_input=True)
    fx.start_worker("w-bad")

    for kind, (job_id, words) in bad.items():
        job = fx.wait_state(job_id, "failed", "succeeded", timeout=120)
        assert job.state == "failed", f"{kind}: {job.state}"
        for word in words:
            assert word in job.state_reason, f"{kind}: {word!r} not in {job.state_reason!r}"
    fx.wait_state(good, "succeeded", "failed", timeout=180)
    time.sleep(REAPER_PASSES)
    for kind, (job_id, _) in bad.items():
        _assert_failed_once(fx, job_id, kind)
    assert_like_reference(fx, good)
    assert len(fx.attempts(good)) == 1


def test_full_disk_fails_with_the_file_then_resumes_after_space_is_freed(fx: FaultHarness) -> None:
    why = can_mount()
    if why:
        pytest.skip(f"cannot mount a tmpfs to fill a disk: {why}")
    fx.start_worker("w-good", reaper=True)
    good = fx.submit("good")
    job_id = fx.submit("disk-full", dispatch=False)
    run_dir = fx.settings.runs_root / job_id
    # stage-1 entry + one epoch's checkpoints (epoch file, last, best: ~80 KB each) fit; epoch 2's do not.
    with tiny_disk(run_dir, "360k"):
        fx.record("disk-full", job_id, "checkpoint write", bad_input=True)
        fx.start_worker("w-disk")
        fx.dispatch(job_id, 1)
        job = fx.wait_state(job_id, "failed", "succeeded", timeout=120)
        assert job.state == "failed", job.state_reason
        assert job.state_reason.startswith(f"disk full writing {run_dir}/"), job.state_reason
        assert "free space under the runs root, then resume the job" in job.state_reason
        time.sleep(REAPER_PASSES)
        _assert_failed_once(fx, job_id, "disk-full")
        assert not list(run_dir.rglob("*.tmp")), "no half-written file left behind"

        grow_disk(run_dir, "16m")  # the operator frees space ...
        with write_transaction(fx.db) as session:  # ... and resumes (what POST /resume does)
            _, attempt = request_resume(session, fx.job(job_id), actor="operator", reason="disk freed")
        fx.dispatch(job_id, attempt)
        fx.wait_state(job_id, "succeeded", "failed", timeout=180)
        assert_like_reference(fx, job_id)
    fx.wait_state(good, "succeeded", "failed", timeout=180)
    assert_like_reference(fx, good)


def _assert_failed_once(fx: FaultHarness, job_id: str, kind: str) -> None:
    job = fx.job(job_id)
    assert job.state == "failed", f"{kind}: {job.state}"
    assert job.attempt == 1 and job.infra_retries == 0, f"{kind}: retried"
    [attempt] = fx.attempts(job_id)
    assert attempt.outcome == "failed" and attempt.reason == job.state_reason
    assert_consistent_end(fx, job_id)
    assert_files_match_records(fx, job_id)
    tally_failed(fx, job_id)
