"""The read-path benchmark's paging part at a tiny size on SQLite: every read answers, and the hot
queries' plans use the indexes (no scan of the job table for a job's forks, no sort of a job's
metrics). No figure is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from benchmarks import read_paths as bench

pytestmark = [pytest.mark.slow]


def test_paging_reads_answer_and_their_plans_use_the_indexes(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--skip-load", "--pg", "", "--jobs", "300", "--epochs", "600", "--repeats", "2"])
    out = capsys.readouterr().out

    rows = re.findall(r"^\| (.+?) \| (\d+) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.MULTILINE)
    assert len(rows) == 12, out
    got = dict(rows)
    assert got["jobs list, first page (50)"] == "50" and got["metrics, first page (500)"] == "500"
    assert 4 < int(got["metrics, chart (points=400)"]) < 600  # thinned, not the whole run
    plans = out.split("### SQLite query plans", 1)[1]
    assert "ix_job_parent_created (parent_job_id=?)" in plans  # a job's forks, in its status
    assert "ix_job_state_created (state=?)" in plans
    assert "ix_epoch_metric_job_epoch (job_id=? AND epoch>?)" in plans
    assert "USE TEMP B-TREE FOR ORDER BY" not in plans  # no full sort (a tie-break within an epoch is)
    assert "SEARCH attempt USING COVERING INDEX ix_attempt_ended_at" in plans  # the reaper's latest end
    assert "SCAN attempt" not in plans


def test_the_idle_phase_waits_for_a_quiet_server_and_no_longer() -> None:
    """``settle`` (before the idle phase) waits while the server's session burns CPU, up to its
    timeout, and returns after a second once the session is quiet."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        assert bench.settle(busy.pid, timeout=2.5) >= 2.5
    finally:
        busy.kill()
        busy.wait()
    quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        time.sleep(0.5)  # past its start-up
        assert bench.settle(quiet.pid, timeout=10) < 2.5
    finally:
        quiet.kill()
        quiet.wait()
