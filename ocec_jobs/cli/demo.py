"""``ocec-jobs demo``: from nothing to a finished two-stage progressive fine-tune in a few minutes.

1. a server: the one at ``--url`` / ``OCEC_URL`` with ``--key`` / ``OCEC_API_KEY``, or with
   ``--embedded`` an ``ocec-jobs up`` of its own (CPU worker) under ``<workdir>/home``;
2. synthetic datasets: domain A (source) and a shifted domain B, by the engine's generator;
3. model A: trained on A by the engine's CLI, here (``python -m ocec_engine train``);
4. uploads: model A and dataset B over HTTP (``POST /models``, ``POST /datasets``), so the demo works
   against a remote server as well as a local one;
5. a progressive job on B with model A as its pretrain (``POST /jobs``), followed live like
   ``ocec-jobs follow``: every epoch and the stage-1 -> 2 transition as they happen;
6. a summary: best F1, the .pt / .onnx (downloaded into the work folder), the dashboard URL.

The exit code is the job's outcome, as for ``ocec-jobs follow`` (0 succeeded, 1 failed, 7 cancelled).
The engine runs as a subprocess: ``ocec_jobs`` never imports torch or the engine (import-linter).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from jobstore.parent_death import preexec_dies_with_parent
from ocec_jobs.cli.client.args import guarded
from ocec_jobs.cli.client.connection import DEFAULT_URL, Target, connect, target_of
from ocec_jobs.cli.client.exitcodes import ClientError, Exit
from ocec_jobs.cli.client.follow import follow_job
from ocec_jobs.cli.client.render import f1
from ocec_jobs.cli.main import SubParsers

if TYPE_CHECKING:
    from ocec_jobs.client import Client

# The recipe, sized so that the job takes about a minute on two CPU cores.
A_IMAGES, B_IMAGES, B_SHIFT = 600, 480, 0.8  # shift 0.8: A's model loses ~0.15 F1 on B (docs/data.md)
A_EPOCHS, A_LR = 5, 3e-3
BATCH = 32
JOB_EPOCHS, UNFREEZE_EPOCH, GATE_F1, STAGE2_LR_FACTOR = 8, 4, 0.80, 0.2
JOB_NAME = "demo-progressive"
UP_READY_S = 180.0
ENGINE_MISSING = (
    "the demo makes its data and model A with the training engine, which is not installed here: "
    "pip install 'ocec-jobs[engine]' (or run scripts/install.sh)"
)
NEEDS_KEY = (
    "the demo needs an operator key: pass --key or set OCEC_API_KEY "
    "(`ocec-jobs up` prints an admin key), or use --embedded"
)
ADMIN_KEY_LINE = re.compile(r"^\s*admin key\s+(ocec_\S+)", re.MULTILINE)


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="make data, train model A, run a progressive fine-tune over HTTP and follow it (a few minutes)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    server = parser.add_argument_group("server")
    server.add_argument("--url", default=None, help=f"server URL (default: $OCEC_URL, else {DEFAULT_URL})")
    server.add_argument("--key", default=None, help="an operator or admin API key (default: $OCEC_API_KEY)")
    server.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    server.add_argument(
        "--embedded",
        action="store_true",
        help="start an `ocec-jobs up` of its own (home <workdir>/home, CPU worker, a free port)",
    )
    server.add_argument("--port", type=int, default=0, help="port of --embedded (default: a free one)")
    server.add_argument(
        "--keep-running",
        action="store_true",
        help="with --embedded: keep the server up after the job (for the dashboard) until Ctrl-C",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("ocec-demo"),
        help="data, model A and the downloads go here (default ./ocec-demo; reused when run again)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="a line per epoch instead of a progress bar"
    )
    parser.set_defaults(handler=guarded(run))


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    work = args.workdir.expanduser().resolve()
    work.mkdir(parents=True, exist_ok=True)
    with server_for(args, work) as target, connect(target) as api:
        _check_server(api)
        data_a, data_b = make_data(work)
        model_a = train_model_a(work, data_a)
        pretrain, data_root = upload(api, model_a, data_b)
        job = submit(api, pretrain, data_root)
        outcome = follow_job(
            api, job["id"], as_json=False, keep_waiting=False, progress=False if args.no_progress else None
        )
        summarize(api, job["id"], work, started)
        if args.embedded and args.keep_running:
            _wait_for_ctrl_c(target.url)
    return int(outcome)


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


# ---- 1. the server -------------------------------------------------------------------------------
@contextmanager
def server_for(args: argparse.Namespace, work: Path) -> Iterator[Target]:
    if not args.embedded:
        target = target_of(args)
        step(f"server {target.url}")
        yield target
        return
    with embedded_server(work / "home", args.port or free_port(), args.timeout) as target:
        yield target


@dataclass
class Embedded:
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def embedded_server(home: Path, port: int, timeout: float) -> Iterator[Target]:
    url = f"http://127.0.0.1:{port}"
    step(f"starting `ocec-jobs up --home {home} --port {port} --device cpu` (log: {home}.log)")
    log = home.with_suffix(".log")
    with log.open("wb") as out:
        command = [*_ocec_jobs(), "up", "--home", str(home), "--port", str(port), "--device", "cpu"]
        command += ["--grace", "10"]
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=preexec_dies_with_parent(signal.SIGTERM),  # the server dies with the demo
        )  # fmt: skip
    server = Embedded(process, log)
    try:
        key = _wait_ready(server, url) or _operator_key(home)
        yield Target(url=url, key=key, timeout=timeout)
    finally:
        _stop(server)
        print(
            f"\nthe embedded server has stopped; `ocec-jobs up --home {home} --port {port}` brings it back "
            "with this job (or run the demo with --keep-running)",
            flush=True,
        )


def _ocec_jobs() -> list[str]:
    return [sys.executable, "-m", "ocec_jobs.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(server: Embedded, url: str) -> str | None:
    """Wait for /readyz; return the admin key ``up`` printed (None when the home had keys already)."""
    import httpx

    deadline = time.monotonic() + UP_READY_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ClientError(Exit.SERVER_ERROR, f"ocec-jobs up exited: see {server.log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                found = ADMIN_KEY_LINE.search(server.log.read_text(errors="replace"))
                key = found.group(1) if found else None
                if key:
                    print(f"   admin key  {key}  (shown once: sign in to the dashboard with it)")
                return key
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ClientError(Exit.UNREACHABLE, f"ocec-jobs up not ready after {UP_READY_S:.0f} s: see {server.log}")


def _operator_key(home: Path) -> str:
    """A home from an earlier run holds keys already (its admin key was shown then): make a new one."""
    done = subprocess.run(
        [*_ocec_jobs(), "keys", "create", "--home", str(home), "--name", "demo", "--role", "operator"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ClientError(Exit.SERVER_ERROR, f"cannot create a key: {done.stderr.strip()}")
    key = done.stdout.strip()
    print(f"   operator key  {key}  (a new one: the home already had keys)")
    return key


def _stop(server: Embedded) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)  # `up` stops its API and worker, then exits
        try:
            server.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def _wait_for_ctrl_c(url: str) -> None:
    print(f"\nthe server keeps running: {url}/  (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping the server")


def _check_server(api: Client) -> None:
    """Reachable, and the key may submit (a server with OCEC_AUTH=off needs none)."""
    from ocec_jobs.client import ApiError

    try:
        me = api.who_am_i()
    except ApiError as exc:
        if exc.status == 401 and api.key is None:
            raise ClientError(Exit.AUTH, NEEDS_KEY) from exc
        raise
    if me.get("role") == "viewer":
        raise ClientError(Exit.AUTH, "the demo submits a job: it needs an operator or admin key")


# ---- 2.-3. data and model A (the engine, as a subprocess) -----------------------------------------
def make_data(work: Path) -> tuple[Path, Path]:
    step(f"synthetic eye crops in {work}: A ({A_IMAGES}, source domain), B ({B_IMAGES}, shift {B_SHIFT})")
    data_a, data_b = work / "A", work / "B"
    for out, flags in (
        (data_a, ["--domain", "A", "--n", str(A_IMAGES), "--seed", "0"]),
        (data_b, ["--domain", "B", "--n", str(B_IMAGES), "--seed", "1", "--shift", str(B_SHIFT)]),
    ):
        if (out / "dataset.parquet").is_file():
            print(f"   {out}/dataset.parquet (from an earlier run)")
            continue
        engine("make-data", *flags, "--out", str(out))
        print(f"   {out}/dataset.parquet")
    return data_a, data_b


def train_model_a(work: Path, data_a: Path) -> Path:
    run_dir = work / "model_A"
    best = run_dir / "best.pt"
    if (run_dir / "best.onnx").is_file() and best.is_file():  # the ONNX is written when a run completes
        step(f"model A: {best} (from an earlier run)")
        return best
    step(f"model A: {A_EPOCHS} epochs on A from scratch (python -m ocec_engine train --output_dir {run_dir})")
    engine(
        "train", "--data_root", str(data_a), "--output_dir", str(run_dir), "--epochs", str(A_EPOCHS),
        "--batch_size", str(BATCH), "--lr", str(A_LR), "--augment", "none", "--no_progress",
        show=lambda line: line.startswith(("epoch ", "best val F1")),
    )  # fmt: skip
    return best


def engine(*argv: str, show: Any = None) -> None:
    """``python -m ocec_engine ARGV``; prints the lines ``show`` accepts, fails with the engine's error."""
    command = [sys.executable, "-m", "ocec_engine", *argv]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            if show is not None and show(line):
                print(f"   {line.rstrip()}", flush=True)
        errors = _tail(process.stderr)
    if process.returncode != 0:
        if "No module named ocec_engine" in errors or "No module named 'torch'" in errors:
            raise ClientError(Exit.USAGE, ENGINE_MISSING)
        raise ClientError(Exit.JOB_FAILED, f"python -m ocec_engine {argv[0]} failed: {errors}")


def _tail(stream: IO[str]) -> str:
    lines = [line.strip() for line in stream.read().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


# ---- 4.-5. uploads and the job --------------------------------------------------------------------
def upload(api: Client, model_a: Path, data_b: Path) -> tuple[str, str]:
    step("uploading model A and dataset B (POST /models, POST /datasets)")
    model = api.upload_model(model_a).upload
    dataset = api.upload_dataset(data_b / "dataset.parquet").upload
    print(f"   model A    -> {model['path']}  (sha256 {model['sha256'][:12]}…)")
    print(f"   dataset B  -> {dataset['path']}  (sha256 {dataset['sha256'][:12]}…)")
    return str(model["use_as"]["pretrain"]), str(dataset["use_as"]["data_root"])


def job_spec(pretrain: str, data_root: str) -> dict[str, Any]:
    return {
        "name": JOB_NAME, "data_root": data_root, "pretrain": pretrain, "stage": 1,
        "epochs": JOB_EPOCHS, "batch_size": BATCH, "lr": A_LR, "augment": "none",
        "freeze_backbone": True, "unfreeze_backbone_epoch": UNFREEZE_EPOCH, "margin_method": "cosface",
        "stage2": {"gate_f1": GATE_F1, "lr_factor": STAGE2_LR_FACTOR, "on_gate_fail": "proceed"},
    }  # fmt: skip


PLAN = f"""\
   stage 1, epochs 1-{UNFREEZE_EPOCH - 1}: the CosFace head trains (lr {A_LR:g}), model A's backbone is frozen
   stage 2, from epoch {UNFREEZE_EPOCH}: + features.2-3 (back half of backbone), lr x {STAGE2_LR_FACTOR:g},
            if the stage-1 val F1 reaches the gate ({GATE_F1:.2f}, the guide's value)
   gate policy `proceed`: should this small run miss the gate, the job enters stage 2 anyway and the
            transition line says so ("policy") — a demo always shows the transition; a real job would
            use keep-trying or pause (docs/steering.md). With these seeds the gate opens on CPU."""


def submit(api: Client, pretrain: str, data_root: str) -> dict[str, Any]:
    step(f"submitting a progressive fine-tune of model A on B (POST /jobs), {JOB_EPOCHS} epochs")
    print(PLAN)
    job = api.create_job(job_spec(pretrain, data_root))
    print(f"   job {job['id']}  (dashboard {api.url}/ui/jobs/{job['id']})\n", flush=True)
    return job


# ---- 6. summary -----------------------------------------------------------------------------------
def summarize(api: Client, job_id: str, work: Path, started: float) -> None:
    job = api.get_job(job_id)
    events = api.list_events(job_id, kind=["stage_change"], limit=50)["data"]
    step(f"{job['state']} in {time.monotonic() - started:.0f} s")
    for event in events:
        if event.get("from_stage") is not None:
            trigger = (event.get("evidence") or {}).get("trigger")
            moved = f"{event['from_stage']} -> {event['to_stage']}"
            print(f"   stage {moved} at epoch {event['epoch']} (trigger: {trigger})")
    print(f"   best val F1 {f1(job.get('best_f1'))} at epoch {job.get('best_epoch')}")
    for name in ("best.pt", "best.onnx"):
        local = download(api, job_id, name, work / f"{JOB_NAME}-{name}")
        print(f"   {name:<10} {local or '(not produced)'}")
        print(f"              {api.url}/jobs/{job_id}/artifacts/{name}")
    print(f"   dashboard  {api.url}/ui/jobs/{job_id}")
    print(f"   status     ocec-jobs status {job_id}", flush=True)


def download(api: Client, job_id: str, name: str, target: Path) -> Path | None:
    from ocec_jobs.client import ApiError

    try:
        return api.download(job_id, name, target, overwrite=True).path
    except ApiError as exc:
        if exc.status == 404:  # a failed or cancelled job may have no ONNX
            return None
        raise
