"""``ocec-jobs gc [--dry-run]``: apply the retention policy now, straight on the database and the runs root.

What goes: epoch checkpoints beyond each job's keep count (``jobstore.retention``: the same pass the
reaper loop runs), and run folders of deleted jobs still on disk. Works on the embedded default with
the server stopped, like ``ocec-jobs keys``. ``--dry-run`` prints what would go and changes nothing.
"""

from __future__ import annotations

import argparse
import sys

from ocec_jobs.cli._local import DatabaseUnusableError, local_engine, settings_for
from ocec_jobs.cli.main import SubParsers

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "gc", help="prune epoch checkpoints beyond the retention policy and leftovers of deleted jobs"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would go; change nothing")
    parser.add_argument(
        "--home", default=None, help="state directory of an embedded setup (default: OCEC_HOME, ./.ocec-jobs)"
    )
    parser.set_defaults(handler=run_gc)


def size(n: int) -> str:
    value, unit = float(n), UNITS[0]
    for unit in UNITS:
        if value < 1024 or unit == UNITS[-1]:
            break
        value /= 1024
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"


def run_gc(args: argparse.Namespace) -> int:
    from jobstore import retention
    from jobstore.db import read_session, transaction_factory
    from jobstore.disk import remove_tree
    from jobstore.models import utcnow

    settings = settings_for(args)
    verb = "would remove" if args.dry_run else "removed"
    try:
        with local_engine(settings) as engine:
            with read_session(engine) as session:
                files = retention.plan(session, settings)
                folders = retention.leftovers(session, settings.runs_root)
            if not args.dry_run:
                files = retention.prune(transaction_factory(engine), settings=settings, now=utcnow()).pruned
                for leftover in folders:
                    remove_tree(leftover.folder)
    except DatabaseUnusableError as exc:
        print(f"ocec-jobs gc: {exc}", file=sys.stderr)
        return 1
    for item in files:
        print(f"{verb} {item.path} ({size(item.size_bytes)}): epoch {item.epoch}, job keeps {item.keep}")
    for leftover in folders:
        when = leftover.deleted_at.isoformat(timespec="seconds")
        print(f"{verb} {leftover.folder}/ ({size(leftover.size_bytes)}): job deleted at {when}")
    total = sum(f.size_bytes for f in files) + sum(f.size_bytes for f in folders)
    print(f"{verb} {len(files)} checkpoint(s) and {len(folders)} folder(s), {size(total)} in all")
    return 0
