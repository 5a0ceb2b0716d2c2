"""Prints the fault-injection figures at the end of the run, in the process that owns the terminal.

The faults write ``benchmarks/out/faults.json`` when their session ends (tests/faults/conftest.py);
under pytest-xdist that is a worker, whose terminal output is not shown. This plugin is loaded by
the root conftest, so the controller (or a plain pytest) prints what this run wrote.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.faults.figures import OUT, summary_lines

_started = time.time()


def pytest_sessionstart(session: pytest.Session) -> None:
    global _started
    _started = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not OUT.exists() or OUT.stat().st_mtime < _started:
        return  # an xdist worker, or no faults ran in this session
    terminalreporter.section("fault-injection figures")
    for line in summary_lines(json.loads(OUT.read_text())):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {OUT})")
