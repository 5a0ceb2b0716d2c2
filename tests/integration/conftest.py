"""Fixtures of the end-to-end tests: the worker test harness with the real engine plugged in."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))  # the worker harness

from worker_harness import Harness, make_harness

REAL_ENGINE = "ocec_engine:train"


@pytest.fixture
def real_harness(
    tmp_path: Path, db_url: str, migrated_engine: Engine, redis_url: str, unique_queue: str
) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, redis_url, unique_queue, migrated_engine, OCEC_ENGINE=REAL_ENGINE)
    yield h
    h.stop_workers()
