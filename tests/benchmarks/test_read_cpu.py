"""The in-process read benchmark at a tiny size: every request through the app answers 200 (it
raises otherwise) and a row is printed per job state. No figure is asserted."""

from __future__ import annotations

import re

import pytest

from benchmarks import read_cpu


def test_read_cpu_prints_a_row_per_state(capsys: pytest.CaptureFixture[str]) -> None:
    read_cpu.main(["--requests", "2"])
    out = capsys.readouterr().out

    rows = re.findall(r"^\| (\w+) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.MULTILINE)
    assert rows == ["running", "succeeded"], out
