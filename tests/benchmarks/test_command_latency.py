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

    # the as-run median needs two epochs of one attempt in a row: a quick run may have none ("-")
    cells = " \\| ".join([CELL, r"\d of (\d)", *[CELL] * 3])
    row = re.search(rf"^\| 0\.1 s \| (?:\d+\.\d\d s|-) \| {cells} \|$", out, re.MULTILINE)
    assert row, out
    seconds = [row.groups()[i : i + 3] for i in (0, 4, 7, 10)]
    counts = [int(n) for _, _, n in seconds]
    assert counts == [2, 1, 1, 1] and row.group(4) == "2"  # force 2 and 3, pause, cancel, resume
    for p50, p95, _ in seconds:
        assert 0 < float(p50) <= float(p95)
    assert re.search(r"^- SQLite \(this run\): \d+ µs$", out, re.MULTILINE), out
