"""``ocec-jobs up``: the whole service on one machine with nothing else installed.

SQLite (WAL) under ``OCEC_HOME`` for the database, kombu's SQLAlchemy transport over another
SQLite file for the Celery broker (``sqla+sqlite:///…``; no broker server), migrations run to head,
the data/model/runs roots created, then the API (uvicorn), one worker and the reaper as child
processes (``ocec_jobs.supervisor``): a dead worker or reaper is restarted with a backoff, and after
repeated crashes left down with the reason in the log and in ``/readyz``; the reaper runs on its own,
so it re-queues the job of a dead worker while that worker is down. The children die with ``up``,
even when it is killed with SIGKILL. ``DATABASE_URL`` / ``REDIS_URL`` in the environment still win,
so ``up`` also fronts a real setup. Ctrl-C or SIGTERM stops the children: SIGTERM, a grace period,
then SIGKILL.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ocec_jobs.cli.keys import SHOWN_ONCE, active_keys, ensure_first_admin
from ocec_jobs.cli.main import SubParsers, subcommands
from ocec_jobs.cli.serve import add_server_flags
from ocec_jobs.supervisor import Child, Supervisor, say, spawn, stop

if TYPE_CHECKING:
    from jobstore.settings import Settings

DEFAULT_HOME = ".ocec-jobs"
HOME_ENV = "OCEC_HOME"
WORKER_COMMAND = "worker"
REAPER_MODULE = "worker.reaper"  # by name: ocec_jobs never imports worker (import-linter contract)
# `ocec-jobs worker` flags per --device: auto = one worker per GPU if nvidia-smi lists any, else CPU.
DEVICE_FLAGS: dict[str, list[str]] = {"auto": [], "cpu": ["--device", "cpu"], "cuda": ["--gpus", "all"]}


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
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="crashes in a row after which a dead worker or reaper is left down (default 5)",
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
    _supervisor_note(settings, "")  # a note left by an earlier `up` no longer holds

    stopping = _install_signal_handlers()
    api = [*_ocec_jobs("api", "--host", args.host, "--port", str(args.port), "--log-level", args.log_level)]
    children = [spawn("api", api, essential=True)]
    worker_note = _start_worker(args, children)
    _print_summary(args, settings, children, worker_note, auth_note)
    supervisor = Supervisor(
        children, args.max_restarts, lambda child: _supervisor_note(settings, child.gave_up)
    )
    code = supervisor.run(stopping)
    stop(children, args.grace)
    return code


def _start_worker(args: argparse.Namespace, children: list[Child]) -> str:
    if args.no_worker:
        return "not started (--no-worker): jobs stay queued until a worker runs"
    if WORKER_COMMAND not in subcommands():
        return "not available in this installation (no `ocec-jobs worker`): jobs stay queued"
    # The reaper runs beside the worker, not inside it: it must re-queue a dead worker's job.
    children.append(spawn("reaper", [sys.executable, "-m", REAPER_MODULE], essential=False))
    worker = _ocec_jobs(WORKER_COMMAND, *DEVICE_FLAGS[args.device], "--no-reaper", "--grace", str(args.grace))
    child = spawn("worker", worker, essential=False)
    children.append(child)
    return f"pid {child.process.pid} (device {args.device}), reaper pid {children[-2].process.pid}"


def _ocec_jobs(*argv: str) -> list[str]:
    return [sys.executable, "-m", "ocec_jobs.cli.main", *argv]


def _install_signal_handlers() -> list[int]:
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return received


def _supervisor_note(settings: Settings, reason: str | None) -> None:
    """Record (or with "" withdraw) why this host's `up` left its worker down, for ``/readyz``."""
    from jobstore.db import make_engine, write_transaction
    from jobstore.repo.workers import record_supervisor_note

    engine = make_engine(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    try:
        with write_transaction(engine) as session:
            name = f"up@{socket.gethostname()}"
            record_supervisor_note(session, name=name, pid=os.getpid(), reason=reason or "")
    except Exception as exc:  # the database is away: the log still says it; keep serving
        say(f"could not record the note for /readyz ({type(exc).__name__}: {exc})")
    finally:
        engine.dispose()


def _first_key_note(settings: Settings) -> list[str]:
    """The auth lines of the summary: on the very first start, the admin key — printed this once."""
    if not settings.auth_enabled:
        return ["  auth       OFF (OCEC_AUTH=off): anyone who reaches the API may do anything"]
    key = ensure_first_admin(settings)
    if key is None:
        return [
            f"  auth       API keys ({active_keys(settings)} active; `ocec-jobs keys list`)",
            "             The admin key was shown on its first start only; a new one (server up or down):",
            f"             {new_admin_key_command(settings.home)}",
        ]
    return [
        f"  admin key  {key}",
        f"             {SHOWN_ONCE}",
        "             Use it as 'Authorization: Bearer <key>' or sign in to the dashboard with it.",
    ]


def new_admin_key_command(home: Path) -> str:
    """``ocec-jobs keys create --role admin``, naming the home unless it is the default one here."""
    default = (Path.cwd() / DEFAULT_HOME).resolve()
    where = "" if Path(home).resolve() == default else f" --home {shlex.quote(str(home))}"
    return f"ocec-jobs keys create --role admin{where}"


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
