"""Fixtures of the benchmark tests: one work folder for the session, so the tiny domain data and
model A (cached there by key: ``benchmarks/domains.py``) are made once for every benchmark test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bench_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-work")
