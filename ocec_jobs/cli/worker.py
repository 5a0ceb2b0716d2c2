"""``ocec-jobs worker``: one Celery worker process per GPU, or one CPU worker.

``--gpus 0,1`` starts ``celery -A worker.app worker`` once per listed GPU, each with its own
``CUDA_VISIBLE_DEVICES`` (and ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so the numbers match ``nvidia-smi``)
and the node name ``gpuN@<host>``; inside each process the GPU is ``cuda:0``. ``--gpus all`` counts
the GPUs with ``nvidia-smi -L`` — this process never loads CUDA. ``--device cpu`` starts one worker
that sees no GPU. Every worker is prefork with one child, consumes the configured queue, and only
the first runs the reaper loop (any number would be safe; one is enough per host).

``--jobs-per-gpu N`` lets each of those workers run N jobs at once on its device (a prefork pool of
N children, still one fresh child per job): OCEC is small enough that one job leaves most of a GPU
idle. Each job holds its own lease and runs in its own process, so a job killed, cancelled or
failed leaves the others on the device running; each attempt records the device it ran on.

SIGTERM / SIGINT are forwarded to every worker, which checkpoints its running job at the next batch
boundary and re-queues it; this command exits when all of them have, and kills what is still running
``--grace`` seconds later. If one worker dies on its own, the others are stopped too, so a supervisor
restarts a complete set. The workers die with this command: each gets SIGTERM as its parent-death
signal, so even a SIGKILL of this command stops them (and their pool children and companions, which
die with them in turn).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from jobstore.parent_death import preexec_dies_with_parent
from jobstore.tasknames import REAPER_ENV
from ocec_jobs.cli.main import SubParsers

CELERY_APP = "worker.app"  # by name: ocec_jobs never imports worker (import-linter contract)
POLL_SECONDS = 0.5
ALL = "all"
CPU = "cpu"
MAX_JOBS_PER_GPU = 64


class WorkerCommandError(RuntimeError):
    """A bad ``--gpus`` value, or no GPU where GPUs were asked for."""


@dataclass(frozen=True)
class Slot:
    """One worker process to start: its node name and what it may see."""

    node: str
    cuda_visible_devices: str
    jobs: int = 1  # jobs at once in this worker (its pool size)


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="run Celery GPU workers: one process per GPU (uses DATABASE_URL and REDIS_URL)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--gpus", help="GPU indices, comma-separated ('0,1'), or 'all' (counted with nvidia-smi -L)"
    )
    where.add_argument("--device", choices=[CPU], help="one worker on the CPU, no GPU visible")
    parser.add_argument(
        "--jobs-per-gpu",
        type=positive_jobs,
        default=1,
        metavar="N",
        help="jobs run at once on each device, each in its own process with its own lease (default 1)",
    )
    parser.add_argument("--queue", help="queue to consume (default: OCEC_QUEUE, else 'gpu')")
    parser.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--no-reaper", action="store_true", help="do not run the reaper loop here")
    parser.add_argument(
        "--grace", type=float, default=60.0, help="seconds workers get to stop after SIGTERM before SIGKILL"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        slots = plan_slots(args.gpus, args.device, args.jobs_per_gpu)
    except WorkerCommandError as exc:
        print(f"ocec-jobs worker: {exc}", file=sys.stderr)
        return 2
    queue = args.queue or _default_queue()
    procs = [
        subprocess.Popen(
            celery_argv(slot, queue, args.loglevel),
            env=slot_env(slot, reaper=i == 0 and not args.no_reaper),
            preexec_fn=preexec_dies_with_parent(signal.SIGTERM),
        )
        for i, slot in enumerate(slots)
    ]
    nodes = ", ".join(s.node + (f" x{s.jobs}" if s.jobs > 1 else "") for s in slots)
    print(f"ocec-jobs worker: {len(procs)} worker(s) on queue {queue!r}: {nodes}")
    return supervise(procs, grace=args.grace)


def plan_slots(gpus: str | None, device: str | None, jobs_per_gpu: int = 1) -> list[Slot]:
    """The worker processes to start for ``--gpus`` / ``--device`` (default: every GPU, else CPU),
    each running ``jobs_per_gpu`` jobs at once."""
    return [dataclasses.replace(slot, jobs=jobs_per_gpu) for slot in _devices(gpus, device)]


def _devices(gpus: str | None, device: str | None) -> list[Slot]:
    if device == CPU:
        return [Slot("cpu@%h", "")]
    if gpus is None:
        count = count_gpus()
        return [_gpu_slot(i) for i in range(count)] if count else [Slot("cpu@%h", "")]
    if gpus.strip() == ALL:
        count = count_gpus()
        if not count:
            raise WorkerCommandError("--gpus all: nvidia-smi lists no GPU (use --device cpu)")
        return [_gpu_slot(i) for i in range(count)]
    return [_gpu_slot(i) for i in parse_gpus(gpus)]


def parse_gpus(value: str) -> list[int]:
    tokens = [t.strip() for t in value.split(",") if t.strip()]
    if not tokens or not all(re.fullmatch(r"\d{1,3}", t) for t in tokens):
        raise WorkerCommandError(f"--gpus {value!r}: expected indices like '0,1' or 'all'")
    indices = [int(t) for t in tokens]
    if len(set(indices)) != len(indices):
        raise WorkerCommandError(f"--gpus {value!r}: a GPU is listed twice")
    return indices


def count_gpus() -> int:
    """GPUs listed by ``nvidia-smi -L`` (0 when it is missing or fails); CUDA is never initialised here."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def celery_argv(slot: Slot, queue: str, loglevel: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", CELERY_APP, "worker",
        "--pool", "prefork", "--concurrency", str(slot.jobs), "--max-tasks-per-child", "1",
        "--queues", queue, "--hostname", slot.node, "--loglevel", loglevel,
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def slot_env(slot: Slot, *, reaper: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = slot.cuda_visible_devices
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env[REAPER_ENV] = "1" if reaper else "0"
    return env


def supervise(procs: Sequence[subprocess.Popen[bytes]], grace: float = 60.0) -> int:
    """Forward SIGTERM/SIGINT to every worker; wait for all; stop all when one exits on its own;
    SIGKILL what still runs ``grace`` seconds after they were asked to stop."""
    deadline: float | None = None

    def stop_all(sig: int) -> None:
        nonlocal deadline
        deadline = deadline or time.monotonic() + grace
        _signal_all(procs, sig)

    def forward(signum: int, _frame: FrameType | None) -> None:
        stop_all(signal.SIGTERM if signum == signal.SIGINT else signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while any(p.poll() is None for p in procs):
            if deadline is None and any(p.poll() is not None for p in procs):
                dead = next(p for p in procs if p.poll() is not None)
                print(f"ocec-jobs worker: pid {dead.pid} exited ({dead.returncode}); stopping the others")
                stop_all(signal.SIGTERM)
            if deadline is not None and time.monotonic() > deadline:
                print(f"ocec-jobs worker: still running {grace:g} s after SIGTERM; killing", flush=True)
                _signal_all(procs, signal.SIGKILL)
            time.sleep(POLL_SECONDS)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max((abs(p.returncode or 0) for p in procs), default=0)


def _signal_all(procs: Sequence[subprocess.Popen[bytes]], sig: int) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)


def positive_jobs(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_JOBS_PER_GPU:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 1 to {MAX_JOBS_PER_GPU}, got {value!r}"
        )
    return int(value)


def _gpu_slot(index: int) -> Slot:
    return Slot(f"gpu{index}@%h", str(index))


def _default_queue() -> str:
    from jobstore.settings import get_settings

    return get_settings().queue
