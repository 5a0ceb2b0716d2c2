"""``stage``, ``decide``, ``resume``, ``fork``, ``pause``, ``cancel``: steering a job (docs/steering.md)."""

from __future__ import annotations

import argparse
from typing import Any

from ocec_jobs.cli.client.args import add
from ocec_jobs.cli.client.connection import connect, target_of
from ocec_jobs.cli.client.exitcodes import Exit
from ocec_jobs.cli.client.jobs import add_follow_flags, follow_after
from ocec_jobs.cli.client.render import job_line, print_json

DECISIONS = ("proceed", "extend", "retry", "stop")
FORK_STAGE2 = (
    ("--gate-f1", "gate_f1", float),
    ("--unfreeze-ratio", "unfreeze_ratio", float),
    ("--lr-factor", "lr_factor", float),
    ("--stage2-lr", "lr", float),
    ("--on-gate-fail", "on_gate_fail", str),
    ("--gate-deadline-epoch", "gate_deadline_epoch", int),
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    stage = add(subparsers, "stage", run_stage, "force a stage at the next epoch boundary", [common])
    stage.add_argument("job_id", metavar="JOB")
    stage.add_argument("stage", type=int, choices=(2, 3))
    stage.add_argument("--reason", required=True, help="why (recorded with your key's name)")

    decide = add(
        subparsers, "decide", run_decide, "decide a failed gate of an awaiting_decision job", [common]
    )
    decide.add_argument("job_id", metavar="JOB")
    decide.add_argument("action", choices=DECISIONS)
    decide.add_argument("--epochs", type=int, help="extend: more epochs before the gate is read again")
    decide.add_argument("--lr", type=float, help="retry: the lr the stage restarts with")
    decide.add_argument("--reason", required=True)
    add_follow_flags(decide, "then follow the job")

    resume = add(subparsers, "resume", run_resume, "resume a paused/failed/cancelled/awaiting job", [common])
    _resume_flags(resume, default_from="last")
    fork = add(subparsers, "fork", run_fork, "start a new job from a checkpoint of this one", [common])
    _resume_flags(fork, default_from="best")
    fork.add_argument("--name", help="the new job's name")
    for flag, _, kind in FORK_STAGE2:
        fork.add_argument(
            flag, type=kind, dest=f"stage2_{flag.lstrip('-').replace('-', '_')}", help="stage-2 override"
        )

    for name, help_text in (
        ("pause", "pause a running job (it checkpoints first)"),
        ("cancel", "cancel a job"),
    ):
        parser = add(subparsers, name, _command(name), help_text, [common])
        parser.add_argument("job_id", metavar="JOB")
        parser.add_argument("--reason", default="")


def _resume_flags(parser: argparse.ArgumentParser, *, default_from: str) -> None:
    parser.add_argument("job_id", metavar="JOB")
    parser.add_argument(
        "--from",
        dest="from_",
        default=None,
        metavar="SELECTOR",
        help=f"last | best | stage:N | epoch:N (default {default_from})",
    )
    parser.add_argument("--stage", type=int, choices=(1, 2, 3), help="continue in this stage (once)")
    parser.add_argument("--lr", type=float, help="new base lr")
    parser.add_argument("--epochs", type=int, help="new epoch budget")
    parser.add_argument("--unfreeze-backbone-epoch", type=int, help="move the stage-2 gate")
    parser.add_argument("--reason", default="")
    add_follow_flags(parser, "then follow the job")


def _resume_body(args: argparse.Namespace) -> dict[str, Any]:
    body = {
        "from_": args.from_,
        "stage": args.stage,
        "lr": args.lr,
        "epochs": args.epochs,
        "unfreeze_backbone_epoch": args.unfreeze_backbone_epoch,
        "reason": args.reason,
    }
    return {k: v for k, v in body.items() if v not in (None, "")}


def _show(args: argparse.Namespace, answer: dict[str, Any]) -> int:
    job = answer.get("job", answer)
    if args.json:
        print_json(answer)
        return int(Exit.OK)
    command = answer.get("command")
    if command:
        merged = " (merged into an open one)" if answer.get("merged") else ""
        print(f"command {command.get('kind')} {command.get('id')}: {command.get('status')}{merged}")
    print(job_line(job))
    return int(Exit.OK)


def run_stage(args: argparse.Namespace) -> int:
    with connect(target_of(args)) as client:
        answer = client.force_stage(args.job_id, args.stage, args.reason)
    return _show(args, answer)


def run_decide(args: argparse.Namespace) -> int:
    with connect(target_of(args)) as client:
        job = client.decide(args.job_id, args.action, args.reason, epochs=args.epochs, lr=args.lr)
        return follow_after(client, args, job)


def run_resume(args: argparse.Namespace) -> int:
    with connect(target_of(args)) as client:
        job = client.resume(args.job_id, **_resume_body(args))
        return follow_after(client, args, job)


def run_fork(args: argparse.Namespace) -> int:
    body = _resume_body(args)
    if args.name:
        body["name"] = args.name
    stage2 = {
        key: getattr(args, f"stage2_{flag.lstrip('-').replace('-', '_')}") for flag, key, _ in FORK_STAGE2
    }
    stage2 = {k: v for k, v in stage2.items() if v is not None}
    if stage2:
        body["stage2"] = stage2
    with connect(target_of(args)) as client:
        job = client.fork(args.job_id, **body)
        return follow_after(client, args, job)


def _command(action: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        with connect(target_of(args)) as client:
            answer = getattr(client, action)(args.job_id, args.reason)
        return _show(args, answer)

    return run
