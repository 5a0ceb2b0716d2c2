"""Fixtures of the worker tests: a harness per test on the real database and the real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from worker_harness import Harness, make_harness


@pytest.fixture
def harness(
    tmp_path: Path, db_url: str, migrated_engine: Engine, redis_url: str, unique_queue: str
) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, redis_url, unique_queue, migrated_engine)
    h.dataset()
    yield h
    h.stop_workers()
