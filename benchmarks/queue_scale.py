"""Thousands of queued jobs, several workers: PostgreSQL + Redis (issue 18, point 3).

A scratch PostgreSQL database at head and a queue of its own on Redis. ``--jobs`` jobs are created
and dispatched as the API does (one ``run_job`` message each, after the commit) with priorities
drawn from ``--priorities``; then ``--workers`` real Celery workers start (``celery -A worker.app
worker``, the configuration ``ocec-jobs worker`` runs: prefork, one child, a fresh child per job, no
prefetch; the first also runs the reaper, as on a real host) and drain the queue. Each job runs the
worker tests' fake engine (``tests/worker/fake_engine.py``): ``--epochs`` epochs of
``--epoch-seconds``, so what is measured is the service's part, not a model's.

Printed, from the database afterwards (never from the workers' own say-so):

- **claims per second**: jobs claimed / (last claim - first claim);
- **queue latency**: claim time - queued time, p50 / p99 / max, overall and per priority;
- **priority order**: the rule with W workers is that a job B may be claimed while at most W - 1
  higher-priority jobs that were queued before it are still unclaimed (those whose messages other
  workers have taken and not yet claimed); every claim that breaks it is an *inversion*;
- **starvation**: every job ran; the longest wait, and when each priority got its first claim.
  Order is strict priority (then first queued), without ageing: a lower priority waits for every
  higher-priority job queued before its turn, so its wait is bounded by the work queued above it;
- **nothing lost or run twice**: every job succeeded, with exactly one attempt, one live metrics row
  per epoch and no superseded row; the reaper's re-dispatches (duplicate messages) are counted;
- **what one job costs a worker**: its attempt, claim → end (the runner, the hooks' writes, the
  engine), and the gap between one attempt's end and the same worker's next claim (the pool child
  exits, a fresh one is forked and started, the next message is taken).

    python benchmarks/queue_scale.py                        # 2,000 jobs, 4 workers
    python benchmarks/queue_scale.py --quick                # 200 jobs, 2 workers
    python benchmarks/queue_scale.py --quick --jobs 40      # what tests/benchmarks runs
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import redis
from sqlalchemy import Engine, func
from sqlmodel import col, select

from benchmarks.command_latency import stop
from benchmarks.read_paths import machine
from benchmarks.scratch import DEFAULT_PG, scratch_database
from jobstore.db import make_engine, read_session, write_transaction
from jobstore.events import EventKind
from jobstore.migrate import upgrade_to_head
from jobstore.models import Attempt, EpochMetric, Job, JobEvent
from jobstore.repo.jobs import create_job
from jobstore.spec import JobCreate
from worker.dispatch import make_dispatch, publisher

REPO = Path(__file__).resolve().parents[1]
FAKE_ENGINE = REPO / "tests" / "worker"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DATA = "fast"


@dataclass
class Outcome:
    """What the database says after the run."""

    jobs: int
    workers: int
    wall: float  # workers started -> last job finished, seconds
    claims: list[tuple[datetime, int, datetime, str]]  # (claimed at, priority, queued at, job id)
    unfinished: dict[str, int] = field(default_factory=dict)  # state -> jobs
    extra_attempts: int = 0  # attempts beyond one per job
    bad_metrics: int = 0  # jobs without exactly one live row per epoch, or with superseded rows
    redispatched: int = 0
    spans: list[float] = field(default_factory=list)  # each attempt, claim -> end, seconds
    turnovers: list[float] = field(default_factory=list)  # attempt end -> same worker's next claim


def main(argv: list[str] | None = None) -> Outcome:
    args = parse(argv)
    command = " ".join(["python benchmarks/queue_scale.py", *(argv if argv is not None else sys.argv[1:])])
    with (
        scratch_database(args.pg, "ocec_queue") as url,
        tempfile.TemporaryDirectory(prefix="ocec-queue-") as tmp,
    ):
        outcome = run(args, url, Path(tmp))
    print(report(outcome, args, command))
    return outcome


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 jobs, 2 workers")
    parser.add_argument("--jobs", type=int, help="queued jobs (default 2000; 200 with --quick)")
    parser.add_argument("--workers", type=int, help="worker processes (default 4; 2 with --quick)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per job")
    parser.add_argument("--epoch-seconds", type=float, default=0.02, help="fake engine epoch length")
    parser.add_argument("--priorities", default="0,5,10", help="job priorities, drawn at random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server (a scratch database is made)")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis broker (a queue of its own is used)")
    parser.add_argument("--logs", type=Path, help="copy the workers' logs (INFO) into this folder")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (200 if args.quick else 2000)
    args.workers = args.workers or (2 if args.quick else 4)
    return args


# ---- the run ----------------------------------------------------------------------------------------
def run(args: argparse.Namespace, url: str, home: Path) -> Outcome:
    upgrade_to_head(url)
    db = make_engine(url)
    queue = f"ocec-bench-{uuid.uuid4().hex[:8]}"
    env = worker_env(url, args.redis, queue, home)
    try:
        enqueue(db, args, env, home)
        level = "INFO" if args.logs else "WARNING"
        workers = [start_worker(f"w{n}", env, home, reaper=n == 0, level=level) for n in range(args.workers)]
        started = time.monotonic()
        try:
            wait_done(db, args.jobs, args.timeout, workers)
            wall = time.monotonic() - started
        finally:
            for process in workers:
                stop(process)
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in home.glob("w*.log"):
                    shutil.copy(log, args.logs / log.name)
        return collect(db, args, wall)
    finally:
        db.dispose()
        drop_queue(args.redis, queue)


def worker_env(url: str, broker: str, queue: str, home: Path) -> dict[str, str]:
    drop = ("REDIS_URL", "OCEC_BROKER_URL", "DATABASE_URL", "OCEC_DATABASE_URL", "OCEC_HOME", "OCEC_QUEUE")
    return {k: v for k, v in os.environ.items() if k not in drop} | {
        "DATABASE_URL": url,
        "OCEC_BROKER_URL": broker,
        "OCEC_QUEUE": queue,
        "OCEC_HOME": str(home),
        "OCEC_ENGINE": "fake_engine:train",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(FAKE_ENGINE)]),
    }


def enqueue(db: Engine, args: argparse.Namespace, env: dict[str, str], home: Path) -> None:
    """Create the jobs (one transaction per job, as the API does) and send one message each."""
    folder = home / "data" / DATA
    folder.mkdir(parents=True)
    script = {"f1": [0.5], "epoch_seconds": args.epoch_seconds, "batches": 2, "check_every": 1}
    (folder / "fake_engine.json").write_text(json.dumps(script))
    rng = random.Random(args.seed)
    priorities = [int(p) for p in args.priorities.split(",")]
    app = publisher(env["OCEC_BROKER_URL"])
    try:
        send = make_dispatch(app, env["OCEC_QUEUE"])
        for n in range(args.jobs):
            create = JobCreate(
                name=f"q{n:05d}", data_root=DATA, epochs=args.epochs, priority=rng.choice(priorities),
                unfreeze_backbone_epoch=None,
            )  # fmt: skip
            with write_transaction(db) as tx:
                job = create_job(tx, create=create).job
            send(job.id, job.attempt)
    finally:
        app.close()


def start_worker(
    name: str, env: dict[str, str], home: Path, *, reaper: bool, level: str
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--pool", "prefork",
        "--concurrency", "1", "--max-tasks-per-child", "1", "--queues", env["OCEC_QUEUE"],
        "--hostname", f"{name}@%h", "--loglevel", level, "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with (home / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            argv, env=env | {"OCEC_WORKER_REAPER": "1" if reaper else "0"}, cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_done(db: Engine, jobs: int, timeout: float, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with read_session(db) as session:
            done = session.exec(
                select(func.count()).select_from(Job).where(col(Job.finished_at).is_not(None))
            )
            if int(done.one()) >= jobs:
                return
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a worker exited early (see its log)")
        time.sleep(0.5)
    print(f"timed out after {timeout:.0f} s; reporting what finished", file=sys.stderr)


def drop_queue(broker: str, queue: str) -> None:
    """Remove this run's keys (the queue, its priority lists, its binding); nothing else."""
    client = redis.Redis.from_url(broker)
    try:
        keys = [*client.scan_iter(match=f"{queue}*"), *client.scan_iter(match=f"_kombu.binding.{queue}*")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# ---- what the database says ----------------------------------------------------------------------------
def collect(db: Engine, args: argparse.Namespace, wall: float) -> Outcome:
    with read_session(db) as session:
        jobs = {j.id: j for j in session.exec(select(Job)).all()}
        attempts = session.exec(select(Attempt)).all()
        rows = session.exec(select(EpochMetric.job_id, EpochMetric.epoch, EpochMetric.superseded)).all()
        redispatched = session.exec(
            select(func.count()).select_from(JobEvent).where(JobEvent.kind == EventKind.REDISPATCHED)
        ).one()
    outcome = Outcome(
        jobs=len(jobs), workers=args.workers, wall=wall, claims=[], redispatched=int(redispatched)
    )
    first: dict[str, Attempt] = {}
    for attempt in attempts:
        if attempt.job_id in first:
            outcome.extra_attempts += 1
        if attempt.job_id not in first or attempt.started_at < first[attempt.job_id].started_at:
            first[attempt.job_id] = attempt
    for job_id, attempt in first.items():
        job = jobs[job_id]
        assert job.queued_at is not None
        outcome.claims.append((attempt.started_at, job.priority, job.queued_at, job_id))
    outcome.spans, outcome.turnovers = service_times(attempts)
    outcome.unfinished = dict(Counter(j.state for j in jobs.values() if j.state != "succeeded"))
    per_job: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for job_id, epoch, superseded in rows:
        per_job[job_id].append((epoch, superseded))
    expected = [(e, False) for e in range(1, args.epochs + 1)]
    ran = [job_id for job_id, job in jobs.items() if job.state != "queued"]  # all of them, unless timed out
    outcome.bad_metrics = sum(1 for job_id in ran if sorted(per_job[job_id]) != expected)
    return outcome


def service_times(attempts: Sequence[Attempt]) -> tuple[list[float], list[float]]:
    """(each attempt's claim -> end, each gap from an attempt's end to its worker's next claim)."""
    spans, turnovers = [], []
    by_worker: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        if attempt.ended_at is not None:
            spans.append((attempt.ended_at - attempt.started_at).total_seconds())
        by_worker[attempt.worker].append(attempt)
    for runs in by_worker.values():
        runs.sort(key=lambda a: a.started_at)
        for before, after in itertools.pairwise(runs):
            if before.ended_at is not None:
                turnovers.append((after.started_at - before.ended_at).total_seconds())
    return spans, turnovers


def inversions(claims: list[tuple[datetime, int, datetime, str]], workers: int) -> tuple[int, int]:
    """(claims that break the rule, the most higher-priority jobs left waiting at one claim)."""
    ordered = sorted(claims)
    broken, worst = 0, 0
    for i, (claimed, priority, _queued, _job) in enumerate(ordered):
        waiting = sum(1 for later in ordered[i + 1 :] if later[1] > priority and later[2] < claimed)
        worst = max(worst, waiting)
        broken += waiting > workers - 1
    return broken, worst


def report(outcome: Outcome, args: argparse.Namespace, command: str) -> str:
    claims = sorted(outcome.claims)
    waits = [(c[0] - c[2]).total_seconds() for c in claims]
    span = (claims[-1][0] - claims[0][0]).total_seconds() if len(claims) > 1 else float("nan")
    broken, worst = inversions(claims, args.workers)
    lines = [
        f"# Queue at scale — `{command}`\n",
        f"PostgreSQL + Redis, {args.workers} Celery workers (prefork, one child, a fresh child per job), "
        f"{outcome.jobs} jobs queued before the workers start, priorities {args.priorities}, fake engine "
        f"{args.epochs} epochs of {args.epoch_seconds:g} s.\n",
        "| figure | value |",
        "|---|---|",
        f"| machine at the end | {machine()} |",
        f"| drained in | {outcome.wall:.1f} s |",
        f"| claims per second | {len(claims) / span:.2f} (first → last claim {span:.1f} s) |",
        f"| queue latency p50 / p99 / max | {_ms(waits)} |",
        f"| one attempt, claim → end, p50 / p99 / max | {_ms(outcome.spans, 2)} |",
        f"| a worker between jobs, attempt end → its next claim, p50 / p99 / max | "
        f"{_ms(outcome.turnovers, 2)} |",
    ]
    by_priority: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for claimed, priority, queued, _job in claims:
        by_priority[priority].append((claimed, queued))
    start = claims[0][0] if claims else None
    for priority in sorted(by_priority, reverse=True):
        items = by_priority[priority]
        waits_p = [(c - q).total_seconds() for c, q in items]
        first = (min(c for c, _ in items) - start).total_seconds() if start else float("nan")
        lines.append(
            f"| priority {priority}: jobs, latency p50 / p99 / max, first claim | {len(items)}, "
            f"{_ms(waits_p)}, +{first:.1f} s |"
        )
    ok = broken == 0
    lost = sum(n for state, n in outcome.unfinished.items() if state != "queued")  # failed, interrupted...
    lines += [
        f"| priority order (≤ {args.workers - 1} higher-priority jobs waiting at any claim) | "
        f"{'respected' if ok else 'NOT respected'}: {broken} inversions, worst {worst} waiting |",
        f"| starvation | {'none' if not outcome.unfinished else 'NOT FINISHED ' + str(outcome.unfinished)}: "
        f"{len(claims)} of {outcome.jobs} jobs ran, longest wait {max(waits, default=float('nan')):.1f} s |",
        f"| lost or run twice | {'YES' if lost or outcome.extra_attempts or outcome.bad_metrics else 'none'}"
        f": {lost} lost, {outcome.extra_attempts} extra attempts, "
        f"{outcome.bad_metrics} jobs with wrong metrics rows |",
        f"| reaper re-dispatches (duplicate messages) | {outcome.redispatched} |",
    ]
    return "\n".join(lines)


def _ms(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    pick = [ordered[max(0, math.ceil(q * len(ordered)) - 1)] for q in (0.5, 0.99)]
    return f"{pick[0]:.{digits}f} / {pick[1]:.{digits}f} / {ordered[-1]:.{digits}f} s"


if __name__ == "__main__":
    main()
