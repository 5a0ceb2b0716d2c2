"""Command latency: from the API accepting an operator command to the engine applying it (issue 12).

The stack is the embedded default a user starts, ``ocec-jobs up`` (SQLite, the SQLite broker, the
default 10 s heartbeat), in a temporary home. Its worker runs the worker tests' fake engine
(``tests/worker/fake_engine.py`` via ``OCEC_ENGINE``): epochs of exactly the chosen length in 10
batches, so what is measured is the server's part, not a model's. Everything goes over HTTP, as a
user's commands would. Per job, each command is sent at a random moment of an epoch once the one
before it has landed: force stage 2, force stage 3, pause, resume, cancel. Latency is taken from the
server's own records: ``requested_at`` → ``applied_at`` of the ``command_applied`` event (force,
pause, cancel) and ``resume_requested`` → ``restored`` (a resume is a new attempt: dispatch, claim,
restore). A force waits for the next epoch boundary by design, so its latency is up to one epoch; a
pause or cancel stops at the end of the running batch (a tenth of an epoch here).

    python benchmarks/command_latency.py                 # epochs of 0.1, 1 and 10 s (about 7 min)
    python benchmarks/command_latency.py --quick         # 0.1 s epochs, one job (about 30 s)
    python benchmarks/command_latency.py --epochs 1 --jobs 3

Also printed: what one of the worker's command checks costs (the read it makes at every epoch boundary
and, between batches, at most every ``command_check_seconds``), on this run's SQLite database and on
any ``--check-database URL`` (e.g. a PostgreSQL at head).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from jobstore.db import make_engine
from worker.command_probe import CommandProbe

REPO = Path(__file__).resolve().parents[1]
FAKE_ENGINE = REPO / "tests" / "worker"
ADMIN_KEY = re.compile(r"^\s*admin key\s+(ocec_\S+)", re.MULTILINE)
BATCHES = 10
STAGE3 = {"unfreeze_ratio": 1.0, "lr_factor": 0.025, "gate_f1": 1.0, "epoch": 10_000}  # by hand only
FULL = {0.1: 10, 1.0: 6, 10.0: 3}  # epoch seconds -> jobs
QUICK = {0.1: 1}
KINDS = ("force_stage", "pause", "cancel", "resume")
CHECK_READS = 200
CHECK_ROUNDS = 15


@dataclass
class Samples:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    epochs: list[float] = field(default_factory=list)  # epoch lengths as run (between metrics rows)
    late: list[int] = field(default_factory=list)  # per force: boundaries passed before it applied


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    plan = QUICK if args.quick else FULL
    if args.epochs:
        plan = {e: args.jobs or FULL.get(e, 3) for e in args.epochs}
    rng = random.Random(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="ocec-latency-") as tmp,
        running_up(Path(tmp)) as (url, key, home),
    ):
        results = {e: measure(url, key, home, e, jobs, rng) for e, jobs in plan.items()}
        checks = {"SQLite (this run)": check_cost(f"sqlite:///{home / 'ocec.db'}")}
    checks |= {redact(url): check_cost(url) for url in args.check_database}
    print(
        report(results, checks, " ".join(["python benchmarks/command_latency.py", *(argv or sys.argv[1:])]))
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="0.1 s epochs, one job")
    parser.add_argument("--epochs", type=float, nargs="+", help="epoch lengths in seconds")
    parser.add_argument("--jobs", type=int, help="jobs per epoch length")
    parser.add_argument("--seed", type=int, default=0, help="where in an epoch each command is sent")
    parser.add_argument(
        "--check-database", action="append", default=[], metavar="URL",
        help="also time the command check on this database (at head), e.g. a PostgreSQL",
    )  # fmt: skip
    return parser.parse_args(argv)


# ---- the stack ---------------------------------------------------------------------------------------
@contextmanager
def running_up(
    folder: Path, engine: str = "fake_engine:train", engine_path: Path = FAKE_ENGINE, *extra: str
) -> Iterator[tuple[str, str, Path]]:
    """``ocec-jobs up`` with the fake engine (or ``engine`` from ``engine_path``), ``extra`` flags;
    yields (url, admin key, home); stopped (group) after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    home, log = folder / "home", folder / "up.log"
    drop = ("DATABASE_URL", "REDIS_URL", "OCEC_BROKER_URL", "OCEC_DATABASE_URL", "OCEC_HOME", "OCEC_QUEUE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {"OCEC_ENGINE": engine, "PYTHONPATH": os.pathsep.join([str(REPO), str(engine_path)])}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = ["ocec-jobs", "up", "--home", str(home), "--port", str(port), "--device", "cpu", *extra]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: ready(url, process, log), 120, f"ocec-jobs up to be ready ({log})")
        found = ADMIN_KEY.search(log.read_text())
        if not found:
            raise RuntimeError(f"ocec-jobs up printed no admin key:\n{log.read_text()}")
        yield url, found.group(1), home
    except Exception:
        print(f"--- ocec-jobs up log (tail) ---\n{log.read_text()[-6000:]}", file=sys.stderr)
        raise
    finally:
        stop(process)


def ready(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"ocec-jobs up exited ({process.returncode}):\n{log.read_text()}")
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# ---- one epoch length ------------------------------------------------------------------------------
def measure(url: str, key: str, home: Path, epoch: float, jobs: int, rng: random.Random) -> Samples:
    samples = Samples()
    data = f"latency-{epoch:g}s"
    folder = home / "data" / data
    folder.mkdir(parents=True, exist_ok=True)
    script = {"f1": [0.5], "epoch_seconds": epoch, "batches": BATCHES, "check_every": 1}
    (folder / "fake_engine.json").write_text(json.dumps(script))
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for n in range(jobs):
            one_job(Api(http, epoch), f"{data}-{n}", data, rng, samples)
    return samples


@dataclass
class Api:
    http: httpx.Client
    epoch: float

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        if response.status_code not in (201, 202):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        return dict(response.json())

    def state(self, job: str) -> str:
        return str(self.http.get(f"/jobs/{job}").json()["state"])

    def event(self, job: str, kind: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            page = self.http.get(f"/jobs/{job}/events", params={"kind": kind, "limit": 500}).json()
            return next((e for e in page["data"] if match(e)), None)

        event: dict[str, Any] = wait_until(found, 120 + 20 * self.epoch, f"a {kind} event of job {job}")
        return event

    def rows(self, job: str) -> list[dict[str, Any]]:
        return list(self.http.get(f"/jobs/{job}/metrics", params={"limit": 500}).json()["data"])

    def epoch_lengths(self, job: str) -> list[float]:
        rows = self.rows(job)
        return [
            seconds(a["recorded_at"], b["recorded_at"])
            for a, b in itertools.pairwise(rows)
            if b["epoch"] == a["epoch"] + 1 and b["attempt"] == a["attempt"]
        ]

    def when(self, job: str, state: str) -> None:
        try:
            wait_until(lambda: self.state(job) == state, 300 + 20 * self.epoch, f"job {job} {state}")
        except TimeoutError as exc:
            now = self.http.get(f"/jobs/{job}").json()
            raise TimeoutError(f"{exc}; it is {now['state']}: {now['state_reason']}") from None


def one_job(api: Api, name: str, data: str, rng: random.Random, samples: Samples) -> None:
    spec = {"name": name, "data_root": data, "epochs": 10_000, "unfreeze_backbone_epoch": None,
            "stage3": STAGE3}  # fmt: skip
    job = str(api.post("/jobs", spec)["id"])
    api.when(job, "running")
    for stage in (2, 3):
        command(api, job, "stage", {"stage": stage, "reason": "latency"}, rng, samples)
    command(api, job, "pause", {"reason": "latency"}, rng, samples)
    api.when(job, "paused")
    api.post(f"/jobs/{job}/resume", {"reason": "latency"})
    asked = api.event(job, "resume_requested", lambda e: True)
    restored = api.event(job, "restored", lambda e: e["seq"] > asked["seq"])
    samples.seconds["resume"].append(seconds(asked["at"], restored["at"]))
    api.when(job, "running")
    command(api, job, "cancel", {"reason": "latency"}, rng, samples)
    api.when(job, "cancelled")
    samples.epochs += api.epoch_lengths(job)


def command(
    api: Api, job: str, path: str, body: dict[str, Any], rng: random.Random, samples: Samples
) -> None:
    """Send at a random moment of an epoch; record requested → applied."""
    time.sleep(rng.uniform(0.0, api.epoch))
    sent = api.post(f"/jobs/{job}/{path}", body)["command"]
    applied = api.event(job, "command_applied", lambda e: e["command_id"] == sent["id"])
    evidence = applied["evidence"]
    samples.seconds[evidence["kind"]].append(seconds(evidence["requested_at"], evidence["applied_at"]))
    if evidence["kind"] == "force_stage":
        samples.late.append(boundaries_late(api.rows(job), evidence["requested_at"], int(applied["epoch"])))


def boundaries_late(rows: list[dict[str, Any]], requested_at: str, applied: int) -> int:
    """Boundaries the force missed: with epochs 1..k recorded before it was committed, the engine
    was training epoch k + 1 (or about to), so it is due at k + 2 at the latest."""
    committed = datetime.fromisoformat(requested_at)
    done = max((r["epoch"] for r in rows if datetime.fromisoformat(r["recorded_at"]) < committed), default=0)
    return max(0, applied - (done + 2))


# ---- the check's own cost, and the report ---------------------------------------------------------
def check_cost(url: str) -> float:
    """µs per read as the worker makes it (a kept connection, AUTOCOMMIT + rollback): the median of
    ``CHECK_ROUNDS`` rounds, so that other load on the host moves it less."""
    db = make_engine(url)
    probe = CommandProbe(db, "no-such-job", every=0.0, deliver=lambda: None)
    rounds = []
    try:
        probe(True)
        for _ in range(CHECK_ROUNDS):
            started = time.perf_counter()
            for _ in range(CHECK_READS):
                probe(True)
            rounds.append((time.perf_counter() - started) / CHECK_READS * 1e6)
        return statistics.median(rounds)
    finally:
        probe.close()
        db.dispose()


def redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//", url)


def report(results: dict[float, Samples], checks: dict[str, float], command: str) -> str:
    lines = [
        f"Command latency, accepted → applied (`{command}`; ocec-jobs up, SQLite, "
        f"heartbeat 10 s, {BATCHES} batches per epoch); seconds, p50 / p95 (n):",
        "",
        "| epoch | as run (median) | force stage | force at the first boundary | pause | cancel "
        "| resume → restored |",
        "|---|---|---|---|---|---|---|",
    ]
    for epoch, samples in results.items():
        cells = [cell(samples.seconds[kind]) for kind in KINDS]
        cells.insert(1, f"{samples.late.count(0)} of {len(samples.late)}")
        ran = f"{statistics.median(samples.epochs):.2f} s" if samples.epochs else "-"
        lines.append(f"| {epoch:g} s | {ran} | " + " | ".join(cells) + " |")
    lines += ["", "One command check (an indexed read), median of rounds:"]
    lines += [f"- {where}: {us:.0f} µs" for where, us in checks.items()]
    return "\n".join(lines)


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50):.3f} / {percentile(values, 95):.3f} ({len(values)})"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


if __name__ == "__main__":
    main()
