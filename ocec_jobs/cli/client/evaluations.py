"""``evaluate``: score a model on a dataset in a worker (``POST /evaluations``); ``--wait`` polls it
to its end and prints the summary (exit 0 succeeded, 1 failed)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from jobstore.text import visible_data
from ocec_jobs.cli.client.args import add, usage
from ocec_jobs.cli.client.connection import connect, target_of
from ocec_jobs.cli.client.exitcodes import Exit
from ocec_jobs.cli.client.render import f1, print_json

FINAL = {"succeeded": Exit.OK, "failed": Exit.JOB_FAILED}
SPLITS = ("all", "val", "test")
ARTIFACTS = "best | last | onnx | stage:N | epoch:N"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = add(subparsers, "evaluate", run_evaluate, "score a model on a dataset in a worker", [common])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", metavar="PATH", help="a checkpoint or .onnx under the server's model root")
    model.add_argument("--model-upload", metavar="ID", help="an uploaded model (upload-model)")
    model.add_argument("--job", metavar="JOB", help="a job whose artifact to score (see --artifact)")
    parser.add_argument("--artifact", default="best", help=f"with --job: {ARTIFACTS} (default best)")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", metavar="PATH", help="a dataset folder under the server's data root")
    data.add_argument("--data-upload", metavar="ID", help="an uploaded dataset (upload-dataset)")
    parser.add_argument("--split", choices=SPLITS, default="all", help="which rows to score (default all)")
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument("--threshold", type=float, metavar="T", help="a fixed threshold on P(open)")
    rule.add_argument("--target-precision-closed", type=float, metavar="P", help="reach this precision")
    rule.add_argument("--target-recall-closed", type=float, metavar="R", help="reach this recall")
    parser.add_argument("--top-k", type=int, default=16, help="confidently wrong crops to keep (default 16)")
    parser.add_argument("--name", default="", help="a label for the list")
    parser.add_argument("--wait", action="store_true", help="wait for the result and print its summary")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls with --wait")


def body_of(args: argparse.Namespace) -> dict[str, Any]:
    if args.artifact != "best" and not args.job:
        raise usage("--artifact needs --job")
    if args.job:
        model: dict[str, str] = {"job": args.job, "artifact": args.artifact}
    else:
        model = {"path": args.model} if args.model else {"upload": args.model_upload}
    data = {"path": args.data} if args.data else {"upload": args.data_upload}
    threshold: dict[str, Any] = {"rule": "f1"}
    for rule, value in (
        ("fixed", args.threshold),
        ("precision_closed", args.target_precision_closed),
        ("recall_closed", args.target_recall_closed),
    ):
        if value is not None:
            threshold = {"rule": rule, "target": value}
    return {"name": args.name, "model": model, "data": data, "split": args.split, "threshold": threshold,
            "top_k": args.top_k}  # fmt: skip


def run_evaluate(args: argparse.Namespace) -> int:
    body = body_of(args)
    with connect(target_of(args)) as client:
        evaluation = client.create_evaluation(body)
        if args.wait:  # no time limit: the worker's run ends it (Ctrl-C leaves it running there)
            poll = max(0.05, args.poll)
            evaluation = client.wait_evaluation(evaluation["id"], timeout=float("inf"), poll_seconds=poll)
    print_json(evaluation) if args.json else print(summary_text(evaluation))
    return int(FINAL.get(evaluation["state"], Exit.OK))


def summary_text(evaluation: Mapping[str, Any]) -> str:
    """A few lines a person reads: state, what was scored, and the headline numbers once done."""
    e = visible_data(evaluation)
    what = f"model {e['model_path']}  data {e['data_path']} ({e['split']})"
    lines = [f"evaluation {e['id']}  {e['state']}  {what}"]
    if e.get("lost"):  # re-queued after lost workers: which attempt this is, and whom it lost
        lost = ", ".join(f"{x.get('worker')} (pid {x.get('pid')})" for x in e["lost"])
        lines.append(f"attempt {e.get('attempt')}; lost workers: {lost}")
    if e.get("state_reason"):
        lines.append(f"reason: {e['state_reason']}")
    summary = e.get("summary") or {}
    if summary:
        data, threshold = summary.get("data") or {}, summary.get("threshold") or {}
        lines.append(f"samples {data.get('samples')} (open {data.get('open')}, closed {data.get('closed')})")
        lines.append(_scores("at 0.5", summary.get("at_0_5")))
        lines.append(_scores(f"at {threshold.get('value')}", summary.get("at_threshold")))
        lines.append(
            f"ROC-AUC {f1(summary.get('roc_auc'))}  PR-AUC {f1(summary.get('pr_auc'))}  "
            f"threshold rule {threshold.get('rule')}"
        )
        lines.append(f"worst crops: {e['links']['worst_png']}")
    return "\n".join(lines)


def _scores(label: str, at: Any) -> str:
    at = at if isinstance(at, Mapping) else {}
    return (
        f"{label:>10}: F1 {f1(at.get('f1'))}  precision {f1(at.get('precision'))}  "
        f"recall {f1(at.get('recall'))}  accuracy {f1(at.get('accuracy'))}"
    )
