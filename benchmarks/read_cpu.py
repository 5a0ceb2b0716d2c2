"""API CPU per ``GET /jobs/{id}``, in process: the app's ASGI callable driven directly (no client, no
sockets, no uvicorn), so the figure is the app's own CPU time per request, whatever else the machine
runs. A SQLite database at head holds one job with a key, its attempt, its worker's presence row,
ten epochs and a run folder of 20 files; the job is read running, then finished (succeeded).

    python benchmarks/read_cpu.py                 # 500 requests per state
    python benchmarks/read_cpu.py --profile       # and cProfile's top entries of the blocking read

Prints CPU ms per request (``time.process_time``: every thread of this process) for the whole
request and for its blocking parts alone: the status read (``api.status.read_status``), the key
look-up and the run folder's size.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update

from api.main import create_app
from api.settings import ApiSettings
from api.status import disk_bytes, read_status
from jobstore import repo
from jobstore.db import make_engine, read_session, write_transaction
from jobstore.migrate import upgrade_to_head
from jobstore.models import Attempt, EpochMetric, Job, WorkerPresence, utcnow
from jobstore.repo.keys import create_key, find_key
from jobstore.spec import JobCreate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500, help="timed requests per state")
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile's top entries of the status read"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ocec-read-cpu-") as tmp:
        url = f"sqlite:///{tmp}/jobs.sqlite"
        upgrade_to_head(url)
        engine = make_engine(url)
        key, job_id = seed(engine)
        settings = ApiSettings(
            home=Path(tmp) / "home", database_url=url, broker_url=f"sqla+sqlite:///{tmp}/b.db"
        )
        run_folder(settings.runs_root / job_id)
        print("| job | request ms | status read ms | key look-up ms | run folder size ms |")
        print("|---|---:|---:|---:|---:|")
        for state in ("running", "succeeded"):
            with write_transaction(engine) as tx:
                tx.execute(update(Job).where(Job.id == job_id).values(state=state))  # type: ignore[arg-type]
            job = repo_job(engine, job_id)
            whole = asyncio.run(requests_cpu(settings, key, f"/jobs/{job_id}", args.requests))
            parts = [
                cpu_ms(lambda: read_status(engine, job_id, settings), args.requests),
                cpu_ms(lambda: look_up(engine, key), args.requests),
                cpu_ms(partial(disk_bytes, job, settings), args.requests),
            ]
            print(f"| {state} | {whole:.2f} | " + " | ".join(f"{ms:.2f}" for ms in parts) + " |")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(lambda: [read_status(engine, job_id, settings) for _ in range(args.requests)])
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)


def seed(engine: Engine) -> tuple[str, str]:
    with write_transaction(engine) as tx:
        key = create_key(tx, name="bench", role="admin").secret
        job = repo.create_job(tx, create=JobCreate(name="read-cpu", data_root="d", epochs=1000)).job
        tx.add(Attempt(job_id=job.id, number=1, worker="w1"))
        tx.add(WorkerPresence(name="w1", pid=1))
        for epoch in range(1, 11):
            tx.add(
                EpochMetric(
                    job_id=job.id, epoch=epoch, attempt=1, stage=1, epoch_seconds=0.1, recorded_at=utcnow()
                )
            )
        values = {"attempt": 1, "lease_owner": "w1", "epoch": 10, "heartbeat_at": utcnow()}
        tx.execute(update(Job).where(Job.id == job.id).values(**values))  # type: ignore[arg-type]
        return key, job.id


def run_folder(folder: Path) -> None:
    (folder / "epochs").mkdir(parents=True)
    for i in range(19):
        (folder / "epochs" / f"epoch_{i:04d}.pt").write_bytes(b"x" * 100)
    (folder / "train.log").write_text("log\n")


def repo_job(engine: Engine, job_id: str) -> Job:
    with read_session(engine) as session:
        return repo.get_job(session, job_id)


def look_up(engine: Engine, key: str) -> None:
    with read_session(engine) as session:
        find_key(session, key)


def cpu_ms(call: Callable[[], object], count: int) -> float:
    for _ in range(20):  # warm the statement caches and the connection pool
        call()
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) * 1000 / count


async def requests_cpu(settings: ApiSettings, key: str, path: str, count: int) -> float:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for _ in range(20):
            await get(app, key, path)
        started = time.process_time()
        for _ in range(count):
            await get(app, key, path)
        return (time.process_time() - started) * 1000 / count


async def get(app: Any, key: str, path: str) -> None:
    """One GET through the whole app (middlewares, auth, route, response), 200 or an error."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {key}".encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "app": app,
    }  # fmt: skip
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")


if __name__ == "__main__":
    main()
