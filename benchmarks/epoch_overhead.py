"""Per-epoch overhead of the job server, and a job's wall time vs the same run without a server.

The stack is the embedded default a user starts, ``ocec-jobs up`` (SQLite, the SQLite broker, one
CPU worker), in a temporary home. Its worker runs the real engine through ``timed_engine.train``
(this folder, via ``OCEC_ENGINE``), which times every hook call: the seconds the *training thread*
spends in the server's code per epoch (metrics row, events, checkpoint records, TensorBoard, the
command probe), hook by hook. The heartbeat runs on its own thread; what it costs the training
thread shows in the wall ratio. Each case then runs the very same ``TrainConfig`` again in a plain
process with no-op hooks (the engine as the CLI runs it, minus the console), and the two per-epoch
wall times are compared: the epochs after the first, end to end.

Epoch lengths of about 0.05 s, 1 s and 10 s come from the data size (stage 1, ``ocec`` augmentation,
batch 32), fitted from two short local runs on this machine.

    python benchmarks/epoch_overhead.py                       # 0.05 s x 40, 1 s x 10, 10 s x 3 epochs
    python benchmarks/epoch_overhead.py --quick               # 0.05 s x 20, 1 s x 4 epochs (~1 min)
    python benchmarks/epoch_overhead.py --checkpoint-every 5  # the job spec's checkpoint_every

Writes benchmarks/out/epoch_overhead.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_throughput import bench_data
from timed_engine import TIMING, baseline

from benchmarks.command_latency import Api, running_up

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
BATCH = 32
FULL = {0.05: 40, 1.0: 10, 10.0: 3}  # target epoch seconds -> epochs
QUICK = {0.05: 20, 1.0: 4}
PER_EPOCH = ("on_epoch_end", "on_checkpoint", "poll_commands", "should_stop", "on_batch_end",
             "on_gate_check", "on_stage_change", "on_command_result")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the job and the baseline get the same threads
    plan = QUICK if args.quick else FULL
    sizes = fit_sizes(list(plan))
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="ocec-overhead-") as tmp,
        running_up(Path(tmp), "timed_engine:train", HERE) as (url, key, home),
    ):
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        for target, epochs in plan.items():
            rows.append(case(Api(http, target), home, Path(tmp), target, sizes[target], epochs, args))
            print(line(rows[-1]), flush=True)
    command = " ".join(["python benchmarks/epoch_overhead.py", *(argv if argv is not None else sys.argv[1:])])
    print(report(rows, command))
    OUT.mkdir(exist_ok=True)
    (OUT / "epoch_overhead.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="0.05 s and 1 s epochs, fewer of them")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="the job spec's checkpoint_every")
    return parser.parse_args(argv)


# ---- data sizes for the target epoch lengths ------------------------------------------------------
def fit_sizes(targets: list[float]) -> dict[float, int]:
    """n for each target epoch length, from a straight line through two short local runs."""
    points = []
    for n in (128, 512):
        with tempfile.TemporaryDirectory() as out:
            config = {"data_root": str(bench_data(n)), "epochs": 4, "batch_size": BATCH, "device": "cpu",
                      "unfreeze_backbone_epoch": None, "output_dir": out}  # fmt: skip
            points.append((n, per_epoch(baseline(config, Path(out)))))
    (n0, t0), (n1, t1) = points
    slope = (t1 - t0) / (n1 - n0)
    if slope <= 0:
        raise SystemExit(f"cannot fit epoch lengths: {n0} images {t0:.3f} s, {n1} images {t1:.3f} s (load?)")
    return {t: max(64, round(n0 + (t - t0) / slope)) for t in targets}


def per_epoch(timing: dict[str, Any]) -> float:
    """The median epoch, end to end (the first one, with its warm-up, left out)."""
    ends = timing["epoch_ends"]
    return float(statistics.median(b - a for a, b in itertools.pairwise(ends)))


# ---- one case ------------------------------------------------------------------------------------------
def case(
    api: Api, home: Path, tmp: Path, target: float, n: int, epochs: int, args: argparse.Namespace
) -> dict[str, Any]:
    name = f"overhead-{target:g}-{n}"
    folder = home / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(bench_data(n), folder / "dataset.parquet")
    spec: dict[str, Any] = {"name": name, "data_root": name, "epochs": epochs,
                            "batch_size": BATCH, "unfreeze_backbone_epoch": None}  # fmt: skip
    if args.checkpoint_every is not None:
        spec["checkpoint_every"] = args.checkpoint_every
    started = time.monotonic()
    job = str(api.post("/jobs", spec)["id"])
    api.when(job, "succeeded")
    job_seconds = time.monotonic() - started
    served = json.loads((home / "runs" / job / TIMING).read_text())
    plain = run_baseline(served["config"], tmp / f"baseline-{target:g}-{n}")
    hooks = {k: v / epochs * 1000 for k, v in served["hook_seconds"].items() if k in PER_EPOCH}
    cpu = {k: v / epochs * 1000 for k, v in served["hook_cpu_seconds"].items() if k in PER_EPOCH}
    return {
        "target_epoch_seconds": target,
        "images": n,
        "epochs": epochs,
        "job_epoch_seconds": per_epoch(served),
        "plain_epoch_seconds": per_epoch(plain),
        "wall_ratio": per_epoch(served) / per_epoch(plain),
        "train_call_ratio": served["train_seconds"] / plain["train_seconds"],
        "server_ms_per_epoch": sum(hooks.values()),
        "hook_ms_per_epoch": hooks,
        "server_cpu_ms_per_epoch": sum(cpu.values()),
        "hook_cpu_ms_per_epoch": cpu,
        "engine_write_ms_per_epoch": served.get("write_seconds", 0.0) / epochs * 1000,
        "post_to_succeeded_seconds": job_seconds,
        "load_average": os.getloadavg()[0],
    }


def run_baseline(config: dict[str, Any], out: Path) -> dict[str, Any]:
    """The job's config in a fresh process with no-op hooks (as the engine CLI runs it)."""
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    subprocess.run([sys.executable, str(HERE / "timed_engine.py"), str(out / "config.json"), str(out)],
                   check=True, env=env)  # fmt: skip
    return dict(json.loads((out / TIMING).read_text()))


# ---- output ----------------------------------------------------------------------------------------------
def line(row: dict[str, Any]) -> str:
    hooks = ", ".join(
        f"{k} {v:.1f}" for k, v in sorted(row["hook_ms_per_epoch"].items(), key=lambda kv: -kv[1])
    )
    return (
        f"epoch ~{row['target_epoch_seconds']:g} s ({row['images']} images, {row['epochs']} epochs): "
        f"job {row['job_epoch_seconds']:.3f} s vs plain {row['plain_epoch_seconds']:.3f} s per epoch "
        f"= {row['wall_ratio']:.3f}x; server on the training thread "
        f"{row['server_ms_per_epoch']:.1f} ms/epoch wall, {row['server_cpu_ms_per_epoch']:.1f} ms CPU "
        f"({hooks}); engine checkpoint writes {row['engine_write_ms_per_epoch']:.1f} ms/epoch; "
        f"load {row['load_average']:.2f}"
    )


def report(rows: list[dict[str, Any]], command: str) -> str:
    lines = [
        f"Per-epoch overhead (`{command}`; ocec-jobs up, SQLite, 1 CPU worker, stage 1, batch {BATCH}):",
        "",
        "| epoch (target) | as run: job / plain | job vs plain, wall "
        "| server's cost on the training thread, wall / CPU "
        "| engine checkpoint writes |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['target_epoch_seconds']:g} s "
            f"| {r['job_epoch_seconds']:.3f} / {r['plain_epoch_seconds']:.3f} s "
            f"| {r['wall_ratio']:.3f}x "
            f"| {r['server_ms_per_epoch']:.1f} / {r['server_cpu_ms_per_epoch']:.1f} ms per epoch "
            f"| {r['engine_write_ms_per_epoch']:.1f} ms/epoch |"
        )
    lines.append(f"\nmedian load average: {statistics.median(r['load_average'] for r in rows):.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
