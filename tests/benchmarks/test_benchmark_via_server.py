"""The benchmark's core variants as jobs on the real stack give the numbers of the local run.

Stack: uvicorn serving the API on a free port (auth on, an operator key), one real Celery worker
(prefork, the real engine) on a queue of its own on the real Redis, a temporary SQLite database.
``progressive_vs_full.py --via-server`` submits head-only, full fine-tune and scratch as jobs and
forks gated and forced from the head-only job's ``epoch:<U-1>`` checkpoint; the same command without
``--via-server`` runs them in-process.

On CPU the engine is deterministic (every random draw is a function of seed, epoch and batch; a
resume continues bit-for-bit) and both sides train the same model A on the same generated data with
the same settings. What can still differ is the float summation order, which depends on the number
of torch threads: the script runs with ``--threads 1``, so the worker is started with
``OMP_NUM_THREADS=1`` too, and then every F1 agrees to the last digit (``EXACT``: a float-equality
allowance only). With different thread counts (the worker's default is one per core) the frozen-
backbone epochs still agree exactly, but runs that train the backbone drift by float rounding that
grows over epochs (measured at the full budget, 40 epochs: up to 0.015 F1 for the full fine-tune,
0.046 for scratch; with matching threads: identical), see docs/benchmark.md.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))  # the worker harness

from worker_harness import Harness, make_harness

from api.settings import ApiSettings
from benchmarks import progressive_vs_full as bench
from benchmarks.records import RunRecord
from benchmarks.summary import summarize
from benchmarks.variants import CORE
from jobstore.db import make_engine, write_transaction
from jobstore.migrate import upgrade_to_head
from jobstore.repo import keys
from jobstore.repo.keys import Role
from tests.api.conftest import forget_queue
from tests.live_api import serve

# five jobs one after the other on a shared 2-core machine: generous limits, no timing assertion
pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(1200)]
EXACT = 1e-9  # F1; see the module docstring
CORE_ONLY = ["--tiny", "--extra-shifts"]  # no probes at any shift: the five core jobs


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, str, Harness]]:
    """(API base URL, an operator's key, the harness) on a temporary SQLite database."""
    url = f"sqlite:///{tmp_path / 'ocec.db'}"
    upgrade_to_head(url)
    queue = f"test-bench-{uuid.uuid4().hex[:12]}"
    db = make_engine(url)
    harness = make_harness(
        tmp_path, url, redis_url, queue, db,
        OCEC_ENGINE="ocec_engine:train", OCEC_DATA_CACHE=str(tmp_path / "cache"),
        OMP_NUM_THREADS="1",  # the script's --threads 1: the same float summation order
    )  # fmt: skip
    settings = ApiSettings(home=harness.settings.home, database_url=url, broker_url=redis_url, queue=queue)
    with write_transaction(db) as session:
        secret = keys.create_key(session, name="bench", role=Role.OPERATOR).secret
    try:
        harness.start_worker("bench")
        with serve(settings) as base:
            yield base, secret, harness
    finally:
        harness.stop_workers()
        db.dispose()
        forget_queue(redis_url, queue)  # only this queue's keys: never FLUSHDB


def _records(path: Path) -> dict[tuple[str, float, int], RunRecord]:
    payload = json.loads(path.read_text())
    return {(r["variant"], r["shift"], r["seed"]): RunRecord.from_dict(r) for r in payload["records"]}


def _largest_gap(
    server: dict[tuple[str, float, int], RunRecord], local: dict[tuple[str, float, int], RunRecord]
) -> float:
    gaps = [abs((server[k].initial_f1 or 0.0) - (r.initial_f1 or 0.0)) for k, r in local.items()]
    for k, r in local.items():
        gaps += [abs(a["val_f1"] - b["val_f1"]) for a, b in zip(server[k].rows, r.rows, strict=False)]
    return max(gaps)


def test_server_jobs_give_the_local_numbers(stack: tuple[str, str, Harness], tmp_path: Path) -> None:
    base, key, harness = stack
    work = tmp_path / "work"
    server_argv = ["--via-server", base, "--key", key, "--server-timeout", "600"]
    try:
        assert (
            bench.main([*CORE_ONLY, "--work", str(work), "--out", str(tmp_path / "server"), *server_argv])
            == 0
        )
    except Exception:
        print("\n".join(w.log()[-6000:] for w in harness.workers))
        raise
    assert bench.main([*CORE_ONLY, "--work", str(work), "--out", str(tmp_path / "local")]) == 0

    [server_file], [local_file] = (
        work.glob("records_tiny_server_*.json"),
        work.glob("records_tiny_local_*.json"),
    )
    server, local = _records(server_file), _records(local_file)
    assert set(server) == set(local) == {(v.key, 1.0, 0) for v in CORE}
    print(f"\nlargest |F1 server - F1 local| over all epochs and runs: {_largest_gap(server, local):.4f}")
    for ident, mine in local.items():
        theirs = server[ident]
        assert theirs.source == "server" and (theirs.job_id is not None) == (ident[0] != "model_a")
        assert theirs.initial_f1 == pytest.approx(mine.initial_f1, abs=EXACT), ident
        assert [r["epoch"] for r in theirs.rows] == [r["epoch"] for r in mine.rows], ident
        assert [r["stage"] for r in theirs.rows] == [r["stage"] for r in mine.rows], ident
        for a, b in zip(theirs.rows, mine.rows, strict=True):
            assert a["val_f1"] == pytest.approx(b["val_f1"], abs=EXACT), (ident, a["epoch"])
        s, m = summarize(theirs), summarize(mine)
        assert (s.gate_read, s.gate_opened, s.unfreeze_epoch) == (
            m.gate_read,
            m.gate_opened,
            m.unfreeze_epoch,
        )
        if m.final_f1 is not None:
            assert s.final_f1 == pytest.approx(m.final_f1, abs=EXACT), ident
    # the forks really are forks of the head-only job (the server's own record of it)
    head = server[("head", 1.0, 0)].job_id
    for variant in ("gated", "forced"):
        status = harness.job(str(server[(variant, 1.0, 0)].job_id))
        assert status.parent_job_id == head
    assert (tmp_path / "server" / "benchmark.md").is_file()
    shutil.rmtree(work / "runs", ignore_errors=True)
