"""``race``: a race's leaderboard, and an operator's stop / promote / extend (docs/race.md).

``ocec-jobs submit --race`` starts one (``ocec_jobs.cli.client.spec``).
"""

from __future__ import annotations

import argparse
from typing import Any

from jobstore.text import visible_data
from ocec_jobs.cli.client.args import add
from ocec_jobs.cli.client.connection import connect, target_of
from ocec_jobs.cli.client.exitcodes import Exit
from ocec_jobs.cli.client.render import f1, print_json, table

COLUMNS = ("candidate", "status", "job", "epoch", "val F1", "best F1", "reason")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    race = add(
        subparsers, "race", run_race, "show a race's leaderboard, or stop / promote / extend", [common]
    )
    race.add_argument("job_id", metavar="JOB", help="the race's parent job (the one submit --race printed)")
    action = race.add_mutually_exclusive_group()
    action.add_argument("--stop", action="store_true", help="cancel every candidate still in play")
    action.add_argument("--promote", metavar="CANDIDATE", help="make it the sole survivor")
    action.add_argument("--extend", metavar="CANDIDATE", help="let it through the next rung")
    race.add_argument("--reason", default="", help="why (recorded with your key's name)")
    race.add_argument("--idempotency-key", default=None, help="a repeat with this key changes nothing")


def run_race(args: argparse.Namespace) -> int:
    key = args.idempotency_key
    with connect(target_of(args)) as client:
        if args.stop:
            race = client.stop_race(args.job_id, args.reason, idempotency_key=key)
        elif args.promote:
            race = client.promote_candidate(args.job_id, args.promote, args.reason, idempotency_key=key)
        elif args.extend:
            race = client.extend_candidate(args.job_id, args.extend, args.reason, idempotency_key=key)
        else:
            race = client.get_race(args.job_id)
    if args.json:
        print_json(race)
    else:
        print(race_text(race))
    return int(Exit.OK)


def race_text(race: dict[str, Any]) -> str:
    race = visible_data(race)
    budget = race["budget"]
    total = budget["total_sample_epochs"] if budget["total_sample_epochs"] is not None else "unbounded"
    lines = [
        f"race {race['job_id']}: {race['state']}"
        + (f", winner {race['winner']}" if race.get("winner") else ""),
        f"budget: {budget['used_sample_epochs']} / {total} sample-epochs;"
        f" rungs {race['rungs']} (next {race['next_rung']}), keep {race['keep_fraction']}",
    ]
    if race.get("reason"):
        lines.append(f"why: {race['reason']}")
    rows = [
        {
            "candidate": str(e["candidate"]), "status": str(e["status"]), "job": str(e["job_id"] or "-"),
            "epoch": str(e["epoch"] if e["epoch"] is not None else "-"), "val F1": f1(e["val_f1"]),
            "best F1": f1(e["best_f1"]), "reason": str(e["reason"])[:60],
        }
        for e in race["leaderboard"]
    ]  # fmt: skip
    return "\n".join([*lines, table(rows, COLUMNS)])
