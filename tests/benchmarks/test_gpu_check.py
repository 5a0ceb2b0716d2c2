"""``benchmarks/gpu_check.sh`` without a GPU: it says so, dry-runs the same code path on the CPU with
tiny settings (one run at a time, AMP off and on) and exits 0 with the table. No figure is asserted."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def test_without_a_gpu_the_check_says_so_and_dry_runs_on_the_cpu() -> None:
    env = {**os.environ, "GPU_CHECK_DRY_RUN": "1", "GPU_CHECK_DRY_JOBS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no GPU on this host" in done.stdout and "GPU figures not measured" in done.stdout
    rows = re.findall(r"^\| 1 \| (off|on) \| (\d+) \| (\d+) \|$", done.stdout, re.MULTILINE)
    assert [amp for amp, _, _ in rows] == ["off", "on"], done.stdout
    assert all(int(total) > 0 for _, total, _ in rows)
