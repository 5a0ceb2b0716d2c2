"""``submit``, ``list``, ``status``, ``follow``: jobs through the HTTP API."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ocec_jobs.cli.client.args import add
from ocec_jobs.cli.client.connection import cli_error, connect, target_of
from ocec_jobs.cli.client.exitcodes import ClientError, Exit
from ocec_jobs.cli.client.follow import follow_job
from ocec_jobs.cli.client.render import JOB_COLUMNS, job_line, job_row, print_json, status_text, table
from ocec_jobs.cli.client.spec import add_spec_flags, spec_from, upload_reference

if TYPE_CHECKING:
    from ocec_jobs.client import Client

STATES = (
    "queued",
    "running",
    "paused",
    "awaiting_decision",
    "interrupted",
    "succeeded",
    "failed",
    "cancelled",
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    submit = add(
        subparsers, "submit", run_submit, "submit a fine-tuning job (flags or --spec FILE)", [common]
    )
    add_spec_flags(submit)
    submit.add_argument("--idempotency-key", default=None, help="a repeat with this key returns the same job")
    add_follow_flags(submit, "then follow it to its end (exit code = its outcome)")

    listing = add(subparsers, "list", run_list, "list jobs, newest first", [common])
    listing.add_argument(
        "--state", action="append", choices=STATES, metavar="STATE", help=f"repeatable: {', '.join(STATES)}"
    )
    listing.add_argument("--stage", type=int, choices=(1, 2, 3))
    listing.add_argument("--name", help="substring of the name, any case")
    listing.add_argument("--limit", type=int, default=20, help="jobs per page (default 20)")
    listing.add_argument("--all", action="store_true", help="every page, not just the first")

    status = add(
        subparsers, "status", run_status, "a job's state, stage, epoch, best F1, next gate", [common]
    )
    status.add_argument("job_id", metavar="JOB")

    follow = add(
        subparsers, "follow", run_follow, "follow a job live until it ends (exit code = outcome)", [common]
    )
    follow.add_argument("job_id", metavar="JOB")
    add_follow_flags(follow, None)


def add_follow_flags(parser: argparse.ArgumentParser, follow_help: str | None) -> None:
    if follow_help is not None:
        parser.add_argument("--follow", action="store_true", help=follow_help)
    parser.add_argument(
        "--keep-waiting",
        action="store_true",
        help="keep following through paused / awaiting_decision (default: exit 8 there)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="a line per epoch instead of a progress bar, even on a terminal",
    )


def follow_after(client: Client, args: argparse.Namespace, job: dict[str, Any]) -> int:
    """The follow that ``--follow`` asks for after submit/resume/fork; else the printed job."""
    if not getattr(args, "follow", False):
        print_json(job) if args.json else print(job_line(job))
        return int(Exit.OK)
    progress = False if args.no_progress else None
    return int(
        follow_job(client, job["id"], as_json=args.json, keep_waiting=args.keep_waiting, progress=progress)
    )


def run_submit(args: argparse.Namespace) -> int:
    body = spec_from(args)
    with connect(target_of(args)) as client:
        resolve_uploads(client, body)
        job = client.create_job(body, idempotency_key=args.idempotency_key)
        return follow_after(client, args, job)


def resolve_uploads(client: Client, body: dict[str, Any]) -> None:
    """``upload:<id>`` in ``pretrain`` / ``data_root`` -> the upload's path on the server."""
    from ocec_jobs.client import ApiError

    for field, lookup in (("pretrain", client.get_model), ("data_root", client.get_dataset)):
        upload_id = upload_reference(body.get(field))
        if upload_id is not None:
            try:
                body[field] = lookup(upload_id)["path"]
            except ApiError as exc:
                error = cli_error(exc, has_key=client.key is not None)
                if error.code != Exit.REFUSED:
                    raise
                raise ClientError(Exit.REFUSED, f"{field}: upload {upload_id!r}: {error.message}") from exc


def run_list(args: argparse.Namespace) -> int:
    filters: dict[str, Any] = {"state": args.state, "stage": args.stage, "name": args.name}
    filters["limit"] = args.limit
    with connect(target_of(args)) as client:
        jobs = list(client.iter_jobs(**filters)) if args.all else client.list_jobs(**filters)["data"]
    if args.json:
        print_json(jobs)
    else:
        print(table([job_row(job) for job in jobs], JOB_COLUMNS) if jobs else "no jobs")
    return int(Exit.OK)


def run_status(args: argparse.Namespace) -> int:
    with connect(target_of(args)) as client:
        job = client.get_job(args.job_id)
    print_json(job) if args.json else print(status_text(job))
    return int(Exit.OK)


def run_follow(args: argparse.Namespace) -> int:
    with connect(target_of(args)) as client:
        args.follow = True
        return follow_after(client, args, {"id": args.job_id})
