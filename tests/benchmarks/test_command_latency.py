"""The command-latency benchmark at its quick size (a real ``ocec-jobs up``, one job of 0.1 s epochs):
it prints a row for each command kind with its sample count. No figure is asserted."""

from __future__ import annotations

import re

import pytest

from benchmarks import command_latency as bench

pytestmark = [pytest.mark.slow]
CELL = r"(\d+\.\d{3}) / (\d+\.\d{3}) \((\d+)\)"


def test_quick_run_prints_p50_and_p95_per_command(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--quick"])
    out = capsys.readouterr().out

    row = re.search(rf"^\| 0\.1 s \| {CELL} \| {CELL} \| {CELL} \| {CELL} \|$", out, re.MULTILINE)
    assert row, out
    counts = [int(row.group(i)) for i in (3, 6, 9, 12)]
    assert counts == [2, 1, 1, 1]  # force 2 and 3, pause, cancel, resume of the one job
    for p50, p95 in zip(row.groups()[0::3], row.groups()[1::3], strict=True):
        assert 0 < float(p50) <= float(p95)
    assert re.search(r"^- SQLite \(this run\): \d+ µs$", out, re.MULTILINE), out
