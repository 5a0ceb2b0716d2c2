"""Total training samples/s of N engine runs at once on one device (what ``--jobs-per-gpu N`` does).

Each of the N runs is its own process (as each job of ``ocec-jobs worker --jobs-per-gpu N`` is),
training stage 1 with the ``ocec`` augmentation on the same synthetic domain-B set; a run's rate is
the engine's train samples/s (median of its epochs after the first), and the total is their sum.
With ``--amp`` every N is measured again with mixed precision. ``benchmarks/gpu_check.sh`` runs it
on a GPU host, or as a tiny CPU dry run where there is none.

    python benchmarks/gpu_throughput.py --device cuda --jobs 1 4 16 --amp
    python benchmarks/gpu_throughput.py --device cpu --jobs 1 2 --n 96 --epochs 2 --batch 32   # dry run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 16], help="runs at once on the device")
    parser.add_argument("--amp", action="store_true", help="also measure every N with mixed precision")
    parser.add_argument("--n", type=int, default=16384, help="synthetic images per run (75 %% train)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a single run: write its rate here
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        one_run(args)
        return
    sys.path.insert(0, str(HERE))
    from engine_throughput import bench_data

    data = bench_data(args.n)
    rows = [
        measure(args, data, jobs, amp)
        for amp in ([False, True] if args.amp else [False])
        for jobs in args.jobs
    ]
    print(f"\nN runs at once on one {args.device} device, stage 1, ocec augmentation, batch {args.batch}:")
    print("| jobs | AMP | total samples/s | per job (median) |")
    print("|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['jobs']} | {'on' if r['amp'] else 'off'} | {r['total']:.0f} | {r['per_job']:.0f} |")
    OUT.mkdir(exist_ok=True)
    (OUT / f"gpu_throughput_{args.device}.json").write_text(json.dumps(rows, indent=1))


def measure(args: argparse.Namespace, data: Path, jobs: int, amp: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ocec-gpu-") as tmp:
        outs = [Path(tmp) / f"run{i}.json" for i in range(jobs)]
        argv = [sys.executable, __file__, "--device", args.device, "--epochs", str(args.epochs),
                "--batch", str(args.batch), "--data", str(data)] + (["--amp"] if amp else [])  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
        }
        procs = [subprocess.Popen([*argv, "--one", str(out)], env=env) for out in outs]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise RuntimeError(f"{jobs} runs (amp {amp}): exit codes {codes}")
        rates = [float(json.loads(out.read_text())["samples_per_sec"]) for out in outs]
    row = {"jobs": jobs, "amp": amp, "total": sum(rates), "per_job": statistics.median(rates), "rates": rates}
    print(f"{jobs} run(s), AMP {'on' if amp else 'off'}: total {row['total']:.0f} samples/s", flush=True)
    return row


def one_run(args: argparse.Namespace) -> None:
    from ocec_engine.config import AugmentPolicy, DeviceChoice, TrainConfig
    from ocec_engine.hooks import EpochMetrics, NullHooks
    from ocec_engine.loop import train

    class Rates(NullHooks):
        def __init__(self) -> None:
            self.rates: list[float] = []

        def on_epoch_end(self, metrics: EpochMetrics) -> None:
            self.rates.append(metrics.samples_per_sec)

    hooks = Rates()
    with tempfile.TemporaryDirectory(prefix="ocec-gpu-run-") as out:
        config = TrainConfig(
            data_root=str(args.data), output_dir=out, epochs=args.epochs, batch_size=args.batch,
            unfreeze_backbone_epoch=None, augment=AugmentPolicy.OCEC, device=DeviceChoice(args.device),
            use_amp=args.amp,
        )  # fmt: skip
        train(config, hooks)
    args.one.write_text(json.dumps({"samples_per_sec": statistics.median(hooks.rates[1:] or hooks.rates)}))


if __name__ == "__main__":
    main()
