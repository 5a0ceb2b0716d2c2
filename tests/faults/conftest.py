"""Fixtures of the fault-injection suite (``pytest -m faults``; it also runs in the normal suite).

Session: a private PostgreSQL cluster and a private Redis (the faults restart them; the shared ones
on 5432/6379 are never touched), and the training world (model A, dataset B, the reference run).
Per test (``fx``): a fresh database cloned from a migrated template, a queue of its own, roots with
the world's files, and real worker/API processes started by the test, all stopped afterwards.
At the end of the session the figures are printed and written to ``benchmarks/out/faults.json``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from jobstore.db import make_engine
from tests.faults.figures import FIGURES
from tests.faults.harness import FAST_LEASE, FaultHarness
from tests.faults.services import PrivatePostgres, PrivateRedis, temp_folder
from tests.faults.world import THREAD_ENV, World, cached, fingerprint

HERE = Path(__file__).resolve().parent
TEST_TIMEOUT_S = 600  # a few minutes each on a quiet box; CI boxes shared with other suites are slower


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))


def pytest_sessionfinish(session: pytest.Session) -> None:
    # written by whichever process ran the faults; tests/faults/report.py prints them
    if FIGURES.faults or FIGURES.jobs:
        FIGURES.write()


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    why = PrivatePostgres.available()
    if why:
        pytest.skip(f"private PostgreSQL unavailable: {why}")
    pg = PrivatePostgres(temp_folder("ocec-faults-pg-"))
    try:
        pg.init()
        pg.start()
        pg.make_template()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    """Built once and kept in pytest's cache folder, keyed by everything it depends on."""
    cache = getattr(request.config, "cache", None)
    folder = None
    if cache is not None:
        folder = cache.mkdir("faults-world") / fingerprint()
    return cached(folder, tmp_path_factory.mktemp("world") / "world", dict(os.environ))


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Decoded dataset shared by every worker of the session (the engine keys it by content hash)."""
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture
def pg_db(private_pg: PrivatePostgres) -> Iterator[tuple[str, Engine]]:
    url = private_pg.new_database()
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def fx(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_db: tuple[str, Engine],
    private_redis: PrivateRedis,
    world: World,
    data_cache: Path,
) -> Iterator[FaultHarness]:
    from worker_harness import make_harness

    url, engine = pg_db
    queue = f"faults-{uuid.uuid4().hex[:10]}"
    env = {
        **FAST_LEASE,
        **THREAD_ENV,
        "OCEC_ENGINE": "ocec_engine:train",
        "OCEC_DATA_CACHE": str(data_cache),
        "OCEC_INFRA_RETRY_BUDGET": "10",
    }
    base = make_harness(tmp_path, url, private_redis.url, queue, engine, **env)
    world.install(base.settings.data_root, base.settings.model_root)
    harness = FaultHarness(base, world, request.node.name)
    yield harness
    harness.stop_all()
