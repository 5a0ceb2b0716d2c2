"""Progressive fine-tuning vs its rivals on a synthetic domain shift: the guide's table, on evidence.

    python benchmarks/progressive_vs_full.py                  # 3 seeds x shifts 0.5/0.75/1.0 -> docs/
    python benchmarks/progressive_vs_full.py --quick          # 1 seed, shift 1.0, small data, 12 epochs, 40 s
    python benchmarks/progressive_vs_full.py --seeds 0 1 --shifts 0.75 1.0 --out /tmp/report
    python benchmarks/progressive_vs_full.py --report-only        # re-render from the saved records
    python benchmarks/progressive_vs_full.py --via-server http://127.0.0.1:8000 --key $KEY [--quick]
                                                              # the same variants as jobs over HTTP

Builds domain A and shifted domains B with ``ocec_engine.synthetic``, trains model A on A (cached per
seed under the work folder), then trains every variant of ``benchmarks/variants.py`` on B with the
same epoch budget and seeds through ``ocec_engine.train(config, hooks)``, and writes
``<out>/benchmark.md`` (the generated section) and ``<out>/img/benchmark_f1.png`` (+ the probes' plot).
Records of every run are saved as JSON under the work folder. Definitions: docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import local_runs, server_runs
from benchmarks.domains import model_a, model_a_f1
from benchmarks.f1_plot import plot
from benchmarks.records import RunRecord
from benchmarks.report import generated, write_into
from benchmarks.summary import aggregate, catch_up, summarize
from benchmarks.variants import BUDGETS, CORE, EXTRAS, Budget

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "out" / "progressive_vs_full"
TITLE = "Benchmark: progressive fine-tuning vs full fine-tune on a domain shift"
MAIN_PLOT = "benchmark_f1.png"
PROBE_PLOT = "benchmark_f1_probes.png"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1 seed, shift 1.0, small data, 12 epochs")
    size.add_argument("--tiny", action="store_true", help="the test suite's size (seconds)")
    p.add_argument("--seeds", type=int, nargs="+", help="training seeds (A generator seed s, B seed s+1)")
    p.add_argument("--shifts", type=float, nargs="+", help="domain-B shift strengths in [0, 1]")
    p.add_argument("--b-n", type=int, help="domain-B images per shift (train + val)")
    p.add_argument("--epochs", type=int, help="epoch budget of every variant on B")
    p.add_argument("--unfreeze", type=int, help="U: the stage-2 gate epoch")
    p.add_argument("--extra-shifts", type=float, nargs="*", help="shifts where the default probes run")
    p.add_argument(
        "--out", type=Path, help="folder for benchmark.md and img/ (default: docs/ for the full size)"
    )
    p.add_argument("--work", type=Path, default=WORK, help="data, model A cache, runs, records")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads of the local runs (default 1: see docs)"
    )
    p.add_argument("--report-only", action="store_true", help="re-render from the saved records")
    p.add_argument("--via-server", metavar="URL", help="run every variant as a job on this server")
    p.add_argument(
        "--key", default=os.environ.get("OCEC_API_KEY"), help="API key (operator) for --via-server"
    )
    p.add_argument("--server-timeout", type=float, default=3600.0, help="seconds to wait for one job")
    return p.parse_args(argv)


def budget_of(args: argparse.Namespace) -> Budget:
    budget = BUDGETS["tiny" if args.tiny else "quick" if args.quick else "full"]
    if args.seeds:
        budget = replace(budget, seeds=tuple(args.seeds))
    if args.shifts:
        budget = replace(budget, shifts=tuple(args.shifts))
    if args.extra_shifts is not None:
        budget = replace(budget, extra_shifts=tuple(args.extra_shifts))
    if args.b_n:
        budget = replace(budget, b_n=args.b_n)
    if args.epochs or args.unfreeze:
        budget = replace(
            budget, epochs=args.epochs or budget.epochs, unfreeze=args.unfreeze or budget.unfreeze
        )
    return budget


def out_dir(args: argparse.Namespace, budget: Budget) -> Path:
    if args.out is not None:
        return Path(args.out)
    if budget == BUDGETS["full"] and not args.via_server:
        return REPO / "docs"  # only the unchanged full run replaces the published table
    return args.work / f"report_{budget.name}"


def records_path(args: argparse.Namespace, budget: Budget) -> Path:
    source = "server" if args.via_server else "local"
    return args.work / f"records_{budget.name}_{source}_{budget.digest()}.json"


def run_all(args: argparse.Namespace, budget: Budget) -> list[RunRecord]:
    records: list[RunRecord] = []
    client = server_runs.JobsClient(args.via_server, args.key) if args.via_server else None
    try:
        for shift in budget.shifts:
            for seed in budget.seeds:
                if client is None:
                    records += local_runs.run_seed_shift(args.work, budget, shift, seed, _progress)
                else:
                    records += server_runs.run_seed_shift(
                        client, args.work, budget, shift, seed, args.server_timeout, _progress
                    )
    finally:
        if client is not None:
            client.close()
    return records


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def measure(
    args: argparse.Namespace, budget: Budget, argv: list[str]
) -> tuple[list[RunRecord], dict[str, Any]]:
    """Run everything with ``--threads`` torch threads (restored afterwards: tests call ``main``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        start, load0 = time.perf_counter(), os.getloadavg()[0]
        records = run_all(args, budget)
        seconds = time.perf_counter() - start
        return records, meta_of(args, budget, _shown(argv), seconds, (load0, os.getloadavg()[0]))
    finally:
        torch.set_num_threads(threads)


def meta_of(
    args: argparse.Namespace, budget: Budget, argv: list[str], seconds: float, loads: tuple[float, float]
) -> dict[str, Any]:
    import torch

    a_f1 = [model_a_f1(model_a(args.work / "models", budget, s)) for s in budget.seeds]
    return {
        "command": " ".join(["python benchmarks/progressive_vs_full.py", *argv]),
        "source": "job server (" + args.via_server + ")" if args.via_server else "local (ocec_engine.train)",
        "runtime": f"{seconds / 60:.1f} min",
        "runtime_seconds": seconds,
        "load": f"{loads[0]:.1f} / {loads[1]:.1f}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "model_a_val_f1": " / ".join(f"{f:.3f}" for f in a_f1 if f is not None),
        "budget": budget.to_dict(),
    }


def render(records: list[RunRecord], budget: Budget, meta: dict[str, Any], out: Path) -> str:
    """Write benchmark.md's generated section and the plots under ``out``; return the section."""
    rows = aggregate([summarize(r) for r in records])
    plots = [f"img/{MAIN_PLOT}"]
    plot(records, budget, CORE, out / "img" / MAIN_PLOT)
    if any(r.variant in {v.key for v in EXTRAS} for r in records):
        references = tuple(v for v in CORE if v.key in ("head", "forced", "full"))
        plot(records, budget, (*references, *EXTRAS), out / "img" / PROBE_PLOT)
        plots.append(f"img/{PROBE_PLOT}")
    section = generated(rows, catch_up(records), budget, meta, plots)
    write_into(out / "benchmark.md", section, TITLE)
    return section


def _shown(argv: list[str]) -> list[str]:
    """The command line as recorded: the API key replaced."""
    return ["$KEY" if i > 0 and argv[i - 1] == "--key" else a for i, a in enumerate(argv)]


def save(path: Path, records: list[RunRecord], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "records": [r.to_dict() for r in records]}
    path.write_text(json.dumps(payload, indent=1))


def load(path: Path) -> tuple[list[RunRecord], dict[str, Any]]:
    payload = json.loads(path.read_text())
    return [RunRecord.from_dict(r) for r in payload["records"]], payload["meta"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.via_server and not args.key:
        print("error: --via-server needs --key (or OCEC_API_KEY)", file=sys.stderr)
        return 2
    budget = budget_of(args)
    path = records_path(args, budget)
    if args.report_only:
        records, meta = load(path)
    else:
        records, meta = measure(args, budget, argv)
        save(path, records, meta)
    section = render(records, budget, meta, out_dir(args, budget))
    print(section)
    print(f"\nrecords: {path}\nreport: {out_dir(args, budget) / 'benchmark.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
