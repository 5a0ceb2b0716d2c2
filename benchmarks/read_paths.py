"""Read paths: how fast the API answers the reads a dashboard and its users make (issue 18, point 2).

1. ``GET /jobs/{id}`` at a fixed rate (default 100 requests/s, open loop from a few client threads)
   against ``ocec-jobs up`` — the embedded default: SQLite, the SQLite broker — while one job trains
   on the worker tests' fake engine (epochs of 0.1 s, so a metrics row, an event and a heartbeat land
   many times a second), then again once the job has ended (idle).
2. Paging at scale, on SQLite and on PostgreSQL (``--pg URL``; a scratch database is created and
   dropped): 10,000 jobs and one job of 5,000 epochs (its metrics rows and events) are written
   straight into a database at head, ``ocec-jobs api`` serves it, and every hot read is timed over
   HTTP: the jobs list (first page, a page deep in the cursor, a state filter, a name search), one
   job's status, its metrics pages, the chart's thinned metrics (``?points=400``) and its events.
3. The query plans of those reads (``EXPLAIN QUERY PLAN`` / ``EXPLAIN``), captured from the SQL the
   repository functions actually send.

    python benchmarks/read_paths.py                       # SQLite and the default PostgreSQL (~3 min)
    python benchmarks/read_paths.py --quick               # shorter load, 2,000 jobs, 1,000 epochs
    python benchmarks/read_paths.py --pg ''               # SQLite only

Latencies are milliseconds from the client: request sent → whole answer read, p50 / p99 / max.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, event, insert, text

from api.status import load_status
from benchmarks.command_latency import percentile, running_up, stop, wait_until
from benchmarks.scratch import DEFAULT_PG, scratch_database
from jobstore import repo
from jobstore.db import make_engine, read_session, write_transaction
from jobstore.migrate import upgrade_to_head
from jobstore.models import Attempt, EpochMetric, Job, JobEvent, utcnow
from jobstore.repo.keys import create_key
from jobstore.repo.workers import queue_view
from jobstore.settings import Settings
from jobstore.spec import JobCreate
from jobstore.states import JobState

REPO = Path(__file__).resolve().parents[1]
API_PID = re.compile(r"^\s*API\s+http\S+\s+\(docs \S+, pid (\d+)\)", re.MULTILINE)  # ocec-jobs up's banner
CHART_POINTS = 400  # what the job page asks for (api/static/js/job_page.js)
STAGE2_FROM = 0.3  # the big job enters stage 2 after this share of its epochs


@dataclass(frozen=True)
class Plan:
    rate: float  # requests per second in part 1
    seconds: float  # per phase (training, idle)
    jobs: int
    epochs: int
    repeats: int  # timed requests per route in part 2


FULL = Plan(rate=100, seconds=20, jobs=10_000, epochs=5_000, repeats=40)
QUICK = Plan(rate=100, seconds=5, jobs=2_000, epochs=1_000, repeats=15)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    plan = QUICK if args.quick else FULL
    sizes = {"jobs": args.jobs, "epochs": args.epochs, "repeats": args.repeats}
    plan = dataclasses.replace(plan, **{k: v for k, v in sizes.items() if v})
    command = " ".join(["python benchmarks/read_paths.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"# Read paths — `{command}`\n")
    print(f"At start: {machine()}.\n")
    if not args.skip_load:
        print(load_section(plan))
    backends = [("SQLite", None)] + ([("PostgreSQL", args.pg)] if args.pg else [])
    for label, server in backends:
        with scratch_database(server, "ocec_reads") as url:
            print(scale_section(label, url, plan))


def machine() -> str:
    """Where it ran: CPUs and the load average, since other work on the machine moves every figure."""
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average (1 / 5 / 15 min) {load}"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5 s phases, 2,000 jobs, 1,000 epochs")
    parser.add_argument("--pg", default=DEFAULT_PG, help="a PostgreSQL server ('' to skip)")
    parser.add_argument("--skip-load", action="store_true", help="skip part 1 (GET /jobs/{id} under load)")
    parser.add_argument("--jobs", type=int, help="jobs in part 2 (default 10,000; 2,000 with --quick)")
    parser.add_argument(
        "--epochs", type=int, help="epochs of the long job (default 5,000; 1,000 with --quick)"
    )
    parser.add_argument("--repeats", type=int, help="timed requests per read in part 2")
    return parser.parse_args(argv)


# ---- part 1: GET /jobs/{id} at a fixed rate ----------------------------------------------------------
def load_section(plan: Plan) -> str:
    with tempfile.TemporaryDirectory(prefix="ocec-reads-") as tmp, running_up(Path(tmp)) as (url, key, home):
        (home / "data" / "reads").mkdir(parents=True, exist_ok=True)
        script = {"f1": [0.5], "epoch_seconds": 0.1, "batches": 10, "check_every": 1}
        (home / "data" / "reads" / "fake_engine.json").write_text(json.dumps(script))
        headers = {"Authorization": f"Bearer {key}"}
        api_pid = int(API_PID.findall((Path(tmp) / "up.log").read_text())[0])
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            body = {"name": "reads", "data_root": "reads", "epochs": 10_000, "unfreeze_backbone_epoch": None}
            created = http.post("/jobs", json=body)
            created.raise_for_status()
            job = created.json()["id"]
            wait_until(lambda: http.get(f"/jobs/{job}").json()["epoch"] >= 3, 120, "the job to train")
            training = at_rate(url, headers, f"/jobs/{job}", plan, api_pid)
            epochs = http.get(f"/jobs/{job}").json()["epoch"]
            http.post(f"/jobs/{job}/cancel", json={"reason": "benchmark"})
            wait_until(lambda: http.get(f"/jobs/{job}").json()["state"] == "cancelled", 120, "the cancel")
            settled = settle(os.getsid(api_pid))
            idle = at_rate(url, headers, f"/jobs/{job}", plan, api_pid)
    lines = [
        f"## GET /jobs/{{id}} at {plan.rate:g} requests/s, {plan.seconds:g} s per phase "
        "(ocec-jobs up: SQLite, fake engine, 0.1 s epochs)\n",
        "| phase | requests | achieved rate | p50 ms | p99 ms | max ms | errors | API CPU ms / request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        load_row(f"while training (job at epoch {epochs})", training, plan.seconds),
        load_row(f"idle (the job ended; the server quiet after {settled:.1f} s)", idle, plan.seconds),
        "",
    ]
    return "\n".join(lines)


def settle(session: int, quiet_ms: float = 30, timeout: float = 60) -> float:
    """Seconds until ``ocec-jobs up``'s processes (its session) use under ``quiet_ms`` of CPU in a
    second: a job's end replaces the worker's pool child (a fork that imports the engine's modules),
    which is the job's cost, not the idle server's."""
    started = time.monotonic()
    before = session_cpu(session)
    while time.monotonic() - started < timeout:
        time.sleep(1)
        now = session_cpu(session)
        if (now - before) * 1000 < quiet_ms:
            break
        before = now
    return time.monotonic() - started


def session_cpu(session: int) -> float:
    """CPU seconds used by the live processes of a session (Linux ``/proc``)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_fields(stat)
        except OSError:  # it exited while we looked
            continue
        if int(fields[3]) == session:
            total += fields_cpu(fields)
    return total


@dataclass
class Load:
    latencies: list[float]
    errors: int
    cpu_ms: float  # the API process's CPU time per request: the latency an idle CPU would give


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux ``/proc``)."""
    return fields_cpu(stat_fields(Path(f"/proc/{pid}/stat")))


def stat_fields(stat: Path) -> list[str]:
    """A ``/proc/<pid>/stat`` line's fields after the command name (which may hold spaces)."""
    return stat.read_text().rsplit(")", 1)[1].split()


def fields_cpu(fields: list[str]) -> float:
    """User + system CPU seconds of ``stat_fields``."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def at_rate(url: str, headers: dict[str, str], path: str, plan: Plan, pid: int) -> Load:
    """Open loop: request i is due at start + i / rate, sent by whichever of a few threads is free."""
    due = [i / plan.rate for i in range(int(plan.rate * plan.seconds))]
    cpu = cpu_seconds(pid)
    lock, results, errors = threading.Lock(), [], [0]
    start = time.perf_counter() + 0.2

    def client() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            while True:
                with lock:
                    if not due:
                        return
                    when = due.pop(0)
                time.sleep(max(0.0, start + when - time.perf_counter()))
                sent = time.perf_counter()
                ok = http.get(path).status_code == 200
                took = (time.perf_counter() - sent) * 1000
                with lock:
                    results.append(took)
                    errors[0] += 0 if ok else 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(results, errors[0], (cpu_seconds(pid) - cpu) * 1000 / max(1, len(results)))


def load_row(label: str, load: Load, seconds: float) -> str:
    ms = load.latencies
    return (
        f"| {label} | {len(ms)} | {len(ms) / seconds:.0f}/s | {percentile(ms, 50):.1f} | "
        f"{percentile(ms, 99):.1f} | {max(ms):.1f} | {load.errors} | {load.cpu_ms:.1f} |"
    )


# ---- part 2: paging at scale ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Seeded:
    key: str
    big: str  # the 5,000-epoch job
    queued: str  # a queued job in the middle of the queue


def scale_section(label: str, url: str, plan: Plan) -> str:
    upgrade_to_head(url)
    engine = make_engine(url)
    seeded = seed(engine, plan)
    with engine.connect() as conn:  # statistics, as a database in use has them (autovacuum, or by hand)
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    plans = query_plans(engine, seeded)
    engine.dispose()
    with (
        tempfile.TemporaryDirectory(prefix="ocec-reads-api-") as tmp,
        api_server(url, Path(tmp)) as (base, pid),
    ):
        rows = time_routes(base, pid, seeded, plan)
    lines = [
        f"## {label}: {plan.jobs:,} jobs, one of {plan.epochs:,} epochs ({plan.repeats} requests each, "
        "ocec-jobs api, one uvicorn worker)\n",
        "| read | rows | p50 ms | p99 ms | max ms | API CPU ms / request |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"### {label} query plans\n",
        *plans,
    ]
    return "\n".join(lines)


def seed(engine: Engine, plan: Plan) -> Seeded:
    with write_transaction(engine) as tx:
        key = create_key(tx, name="bench", role="admin").secret
        template = repo.create_job(
            tx, create=JobCreate(name="template", data_root="d", epochs=plan.epochs)
        ).job
        spec = dict(template.spec)
    start, states = utcnow() - timedelta(days=30), _state_mix()
    jobs: list[dict[str, Any]] = []
    for i in range(plan.jobs):
        at = start + timedelta(seconds=i * 10)
        state = states[i % len(states)]
        jobs.append(
            Job(
                name=f"job-{i:05d}", spec=spec, state=state, priority=i % 3, stage=1, epochs=plan.epochs,
                queued_at=at, created_at=at, updated_at=at, event_seq=0,
            ).model_dump()
        )  # fmt: skip
    big = jobs[-1] | {"name": "long-run", "state": JobState.SUCCEEDED.value, "epoch": plan.epochs, "stage": 2}
    jobs[-1] = big
    attempts = [  # every job that left the queue ran once (the reaper's queue view reads them)
        Attempt(
            job_id=j["id"], number=1, worker="w", started_at=j["queued_at"], ended_at=j["queued_at"]
        ).model_dump()
        for j in jobs
        if j["state"] != JobState.QUEUED.value
    ]
    with write_transaction(engine) as tx:
        for chunk in range(0, len(jobs), 1000):
            tx.execute(insert(Job.__table__), jobs[chunk : chunk + 1000])  # type: ignore[attr-defined]
        for chunk in range(0, len(attempts), 1000):
            tx.execute(insert(Attempt.__table__), attempts[chunk : chunk + 1000])  # type: ignore[attr-defined]
        seq = _history(tx, big["id"], plan.epochs)
        tx.execute(text("UPDATE job SET event_seq = :seq WHERE id = :id"), {"seq": seq, "id": big["id"]})
    queued = [j["id"] for j in jobs if j["state"] == JobState.QUEUED.value]
    return Seeded(key=key, big=big["id"], queued=queued[len(queued) // 2])


def _state_mix() -> list[str]:
    return [JobState.SUCCEEDED.value] * 7 + [
        JobState.QUEUED.value,
        JobState.FAILED.value,
        JobState.CANCELLED.value,
    ]


def _history(tx: Any, job_id: str, epochs: int) -> int:
    """The big job's metrics rows and events (one epoch event each, a stage change); its last seq."""
    now, switch = utcnow(), int(epochs * STAGE2_FROM)
    metrics, events = [], []
    for epoch in range(1, epochs + 1):
        stage = 1 if epoch <= switch else 2
        f1 = 0.6 + 0.3 * epoch / epochs + (0.05 if epoch % 37 == 0 else 0)
        metrics.append(
            EpochMetric(
                job_id=job_id, epoch=epoch, attempt=1, stage=stage, train_loss=1 / epoch,
                val_loss=1.1 / epoch, val_f1=f1, val_precision=f1, val_recall=f1, val_accuracy=f1,
                fisher_ratio=2.0,
                lrs={"head": 1e-3, "backbone": 1e-4 if stage == 2 else 0.0}, trainable_params=1000,
                epoch_seconds=0.1, samples_per_sec=1e4, recorded_at=now,
            ).model_dump(exclude={"id"})
        )  # fmt: skip
        kind = "stage_change" if epoch == switch + 1 else "epoch"
        events.append(
            JobEvent(
                job_id=job_id, seq=len(events) + 1, kind=kind, at=now, actor="worker",
                reason=f"epoch {epoch}", attempt=1, epoch=epoch, stage=stage, evidence={"val_f1": f1},
            ).model_dump(exclude={"id"})
        )  # fmt: skip
    for chunk in range(0, epochs, 1000):
        tx.execute(insert(EpochMetric.__table__), metrics[chunk : chunk + 1000])  # type: ignore[attr-defined]
        tx.execute(insert(JobEvent.__table__), events[chunk : chunk + 1000])  # type: ignore[attr-defined]
    return len(events)


@contextmanager
def api_server(url: str, folder: Path) -> Iterator[tuple[str, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    drop = ("REDIS_URL", "OCEC_BROKER_URL", "OCEC_DATABASE_URL", "OCEC_HOME")
    env = {k: v for k, v in os.environ.items() if k not in drop} | {
        "DATABASE_URL": url,
        "OCEC_HOME": str(folder),
        "OCEC_BROKER_URL": f"sqla+sqlite:///{folder}/broker.db",
        "PYTHONPATH": str(REPO),
    }
    command = [
        str(Path(sys.executable).parent / "ocec-jobs"),
        "api",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    log = folder / "api.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(base, process, log), 60, "ocec-jobs api")
        yield base, process.pid  # one uvicorn worker: it serves in this process
    finally:
        stop(process)


def _up(base: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"ocec-jobs api exited:\n{log.read_text()}")
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def time_routes(base: str, pid: int, seeded: Seeded, plan: Plan) -> list[str]:
    headers = {"Authorization": f"Bearer {seeded.key}"}
    big, deep = f"/jobs/{seeded.big}", max(0, plan.epochs - 100)
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        cursor = _deep_cursor(http, plan.jobs // 2)
        routes: list[tuple[str, str, dict[str, Any]]] = [
            ("jobs list, first page (50)", "/jobs", {}),
            ("jobs list, largest page (500)", "/jobs", {"limit": 500}),
            (f"jobs list, page after {plan.jobs // 2:,} jobs (cursor)", "/jobs", {"cursor": cursor}),
            ("jobs list, state=succeeded", "/jobs", {"state": "succeeded"}),
            ("jobs list, name search", "/jobs", {"name": "job-01"}),
            ("job status, the long run", big, {}),
            ("job status, queued (queue position)", f"/jobs/{seeded.queued}", {}),
            ("metrics, first page (500)", f"{big}/metrics", {}),
            (f"metrics, page after epoch {deep:,}", f"{big}/metrics", {"after_epoch": deep}),
            (f"metrics, chart (points={CHART_POINTS})", f"{big}/metrics", {"points": CHART_POINTS}),
            ("events, first page (500)", f"{big}/events", {}),
            (f"events, page after seq {deep:,}", f"{big}/events", {"after": deep}),
        ]
        return [_time(http, pid, label, path, params, plan.repeats) for label, path, params in routes]


def _deep_cursor(http: httpx.Client, depth: int) -> str:
    cursor, seen = None, 0
    while seen < depth:
        size = {"limit": min(500, depth - seen)}
        page = http.get("/jobs", params=size | ({"cursor": cursor} if cursor else {})).json()
        cursor, seen = page["next_cursor"], seen + len(page["data"])
    return str(cursor)


def _time(http: httpx.Client, pid: int, label: str, path: str, params: dict[str, Any], repeats: int) -> str:
    for _ in range(3):
        http.get(path, params=params)  # warm the connection and the database's cache
    ms, rows, cpu = [], 0, cpu_seconds(pid)
    for _ in range(repeats):
        sent = time.perf_counter()
        response = http.get(path, params=params)
        ms.append((time.perf_counter() - sent) * 1000)
        response.raise_for_status()
        rows = len(response.json().get("data", [None]))
    per_request = (cpu_seconds(pid) - cpu) * 1000 / repeats
    return (
        f"| {label} | {rows} | {percentile(ms, 50):.1f} | {percentile(ms, 99):.1f} | {max(ms):.1f} | "
        f"{per_request:.1f} |"
    )


# ---- part 3: the query plans ------------------------------------------------------------------------------
def query_plans(engine: Engine, seeded: Seeded) -> list[str]:
    settings = Settings(database_url=str(engine.url))
    reads: list[tuple[str, Callable[[Any], object]]] = [
        (
            "job status (every read of GET /jobs/{id})",
            lambda s: load_status(s, repo.get_job(s, seeded.big), settings),
        ),
        ("queue position", lambda s: repo.queue_position(s, repo.get_job(s, seeded.queued))),
        ("jobs list page", lambda s: repo.list_jobs(s, limit=50)),
        ("jobs list, state filter", lambda s: repo.list_jobs(s, limit=50, states=[JobState.SUCCEEDED])),
        ("metrics page", lambda s: repo.list_metrics(s, job_id=seeded.big, after_epoch=100, limit=501)),
        ("events page", lambda s: repo.list_events(s, job_id=seeded.big, after_seq=100, limit=501)),
        (
            "the reaper's queue view (queued jobs past the re-send window)",
            lambda s: queue_view(s, now=utcnow(), after=timedelta(minutes=2), fresh=30),
        ),
    ]
    out = []
    for label, read in reads:
        for statement, params in captured(engine, read):
            out += [f"- **{label}**: `{' '.join(statement.split())[:160]}…`", "  ```"]
            out += [f"  {line}" for line in explain(engine, statement, params)] + ["  ```"]
    return out


def captured(engine: Engine, read: Callable[[Any], object]) -> list[tuple[str, Any]]:
    """The SELECTs ``read`` sends, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        with read_session(engine) as session:
            read(session)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return seen


def explain(engine: Engine, statement: str, params: Any) -> list[str]:
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, params).all()
    return [f"{'  ' * 0}{row[-1]}" for row in rows]


if __name__ == "__main__":
    main()
