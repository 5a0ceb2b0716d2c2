"""``ocec-jobs up``: the whole service on one machine with nothing else installed.

SQLite (WAL) under ``OCEC_HOME`` for the database, kombu's SQLAlchemy transport over another
SQLite file for the Celery broker (``sqla+sqlite:///…``; no broker server), migrations run to head,
the data/model/runs roots created, then the API (uvicorn) and one worker as child processes.
``DATABASE_URL`` / ``REDIS_URL`` in the environment still win, so ``up`` also fronts a real setup.
Ctrl-C or SIGTERM stops the children: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ocec_jobs.cli.keys import SHOWN_ONCE, active_keys, ensure_first_admin
from ocec_jobs.cli.main import SubParsers, subcommands
from ocec_jobs.cli.serve import add_server_flags

if TYPE_CHECKING:
    from jobstore.settings import Settings

DEFAULT_HOME = ".ocec-jobs"
HOME_ENV = "OCEC_HOME"
WORKER_COMMAND = "worker"
POLL_S = 0.5
# `ocec-jobs worker` flags per --device: auto = one worker per GPU if nvidia-smi lists any, else CPU.
DEVICE_FLAGS: dict[str, list[str]] = {"auto": [], "cpu": ["--device", "cpu"], "cuda": ["--gpus", "all"]}


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    essential: bool  # the service is down without it: up exits when it does


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "up", help="run API + one worker on the embedded default (SQLite, no servers)"
    )
    add_server_flags(parser)
    parser.add_argument(
        "--home",
        default=os.environ.get(HOME_ENV, DEFAULT_HOME),
        help="state directory (OCEC_HOME, default ./.ocec-jobs)",
    )
    parser.add_argument("--no-worker", action="store_true", help="start the API only")
    parser.add_argument(
        "--device",
        default="auto",
        choices=list(DEVICE_FLAGS),
        help="worker device: auto (GPUs if any), cpu, cuda",
    )
    parser.add_argument(
        "--grace", type=float, default=30.0, help="seconds children get to stop before SIGKILL"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jobstore.migrate import upgrade_to_head
    from jobstore.settings import Settings

    home = Path(args.home).expanduser().resolve()
    os.environ[HOME_ENV] = str(home)  # children inherit it; their settings then agree with ours
    settings = Settings(home=home)
    home.mkdir(parents=True, exist_ok=True)
    for root in (settings.data_root, settings.model_root, settings.runs_root, settings.upload_root):
        root.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    auth_note = _first_key_note(settings)

    stopping = _install_signal_handlers()
    children = [
        _spawn("api", ["api", "--host", args.host, "--port", str(args.port), "--log-level", args.log_level])
    ]
    worker_note = _start_worker(args, children)
    _print_summary(args, settings, children, worker_note, auth_note)
    code = _supervise(children, stopping)
    _stop(children, args.grace)
    return code


def _start_worker(args: argparse.Namespace, children: list[Child]) -> str:
    if args.no_worker:
        return "not started (--no-worker): jobs stay queued until a worker runs"
    if WORKER_COMMAND not in subcommands():
        return "not available in this installation (no `ocec-jobs worker`): jobs stay queued"
    child = _spawn(WORKER_COMMAND, [WORKER_COMMAND, *DEVICE_FLAGS[args.device]], essential=False)
    children.append(child)
    return f"pid {child.process.pid} (device {args.device})"


def _spawn(name: str, argv: Sequence[str], essential: bool = True) -> Child:
    command = [sys.executable, "-m", "ocec_jobs.cli.main", *argv]
    # A session of their own: a terminal's Ctrl-C reaches only us, and we stop them in order.
    process = subprocess.Popen(command, start_new_session=True)
    return Child(name=name, process=process, essential=essential)


def _install_signal_handlers() -> list[int]:
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return received


def _supervise(children: list[Child], stopping: list[int]) -> int:
    """Wait for a signal or for an essential child to exit; report children that die early."""
    reported: set[str] = set()
    while not stopping:
        for child in children:
            code = child.process.poll()
            if code is None or child.name in reported:
                continue
            reported.add(child.name)
            print(f"ocec-jobs up: {child.name} exited with code {code}", file=sys.stderr, flush=True)
            if child.essential:
                return code or 1
        time.sleep(POLL_S)
    print(f"ocec-jobs up: {signal.Signals(stopping[0]).name}, stopping", flush=True)
    return 0


def _stop(children: list[Child], grace: float) -> None:
    """SIGTERM every child, wait up to ``grace`` seconds in all, then SIGKILL what is left."""
    alive = [c for c in children if c.process.poll() is None]
    for child in alive:
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in alive:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"ocec-jobs up: {child.name} did not stop in {grace:g}s, killing it", file=sys.stderr)
            child.process.kill()
            child.process.wait()


def _first_key_note(settings: Settings) -> list[str]:
    """The auth lines of the summary: on the very first start, the admin key — printed this once."""
    if not settings.auth_enabled:
        return ["  auth       OFF (OCEC_AUTH=off): anyone who reaches the API may do anything"]
    key = ensure_first_admin(settings)
    if key is None:
        return [f"  auth       API keys ({active_keys(settings)} active; `ocec-jobs keys list`)"]
    return [
        f"  admin key  {key}",
        f"             {SHOWN_ONCE}",
        "             Use it as 'Authorization: Bearer <key>' or sign in to the dashboard with it.",
    ]


def _print_summary(
    args: argparse.Namespace, settings: Settings, children: list[Child], worker: str, auth: list[str]
) -> None:
    url = f"http://{args.host}:{args.port}"
    lines = [
        "ocec-jobs is starting",
        f"  API        {url}  (docs {url}/docs, pid {children[0].process.pid})",
        f"  worker     {worker}",
        f"  home       {settings.home}",
        f"  database   {_masked(settings.database_url)}",
        f"  broker     {_masked(settings.broker_url)}  (queue {settings.queue})",
        f"  data root  {settings.data_root}",
        f"  model root {settings.model_root}",
        f"  runs root  {settings.runs_root}",
        *auth,
        "Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
