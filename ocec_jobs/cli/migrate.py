"""``ocec-jobs migrate``: bring the database the settings name to the newest schema, print the revision.

The distributed layout runs it once before the API and the workers start (docker-compose.yml's
``migrate`` service); ``ocec-jobs up`` does the same by itself. It is safe to run again (nothing to
do) and from several hosts at once (Alembic runs take turns: migrations/env.py). ``--check`` changes
nothing and exits 1 unless the database is already at head (for a readiness gate in a deploy script).
"""

from __future__ import annotations

import argparse
import sys
from enum import IntEnum
from pathlib import Path

from ocec_jobs.cli.main import SubParsers
from ocec_jobs.cli.up import _masked

SQLITE_PREFIX = "sqlite:///"


class MigrateExit(IntEnum):
    OK = 0
    NOT_AT_HEAD = 1  # --check only
    FAILED = 2  # bad settings, unreachable database, a migration that failed


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="upgrade the database (DATABASE_URL, else OCEC_HOME's SQLite) to the newest schema",
        description="Upgrade the database the settings name (DATABASE_URL, else <OCEC_HOME>/ocec.db) "
        "to the newest Alembic revision and print it.",
    )
    parser.add_argument(
        "--home", default=None, help="state directory of an embedded setup (default: OCEC_HOME, ./.ocec-jobs)"
    )
    parser.add_argument(
        "--database-url", default=None, help="database to migrate (default: DATABASE_URL, else the home's)"
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 unless the database is at head"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from jobstore.migrate import current_revision, head_revision, upgrade_to_head

    try:
        url = _database_url(args)
        shown = _masked(url)
        before = current_revision(url) if not _missing_sqlite_file(url) else None
        head = head_revision()
        if args.check:
            state = "at head" if before == head else f"NOT at head {head}"
            print(f"database {shown}: revision {before or '(none)'} — {state}")
            return int(MigrateExit.OK if before == head else MigrateExit.NOT_AT_HEAD)
        _make_sqlite_folder(url)
        upgrade_to_head(url)
        after = current_revision(url)
    except Exception as exc:  # one line, no traceback: the message names the URL or the setting
        message = " ".join(str(exc).split())[:500]
        print(f"ocec-jobs migrate: {type(exc).__name__}: {message}", file=sys.stderr)
        return int(MigrateExit.FAILED)
    change = "already at head" if before == after else f"upgraded from {before or '(empty)'}"
    print(f"database {shown}: revision {after} (head; {change})")
    return int(MigrateExit.OK)


def _database_url(args: argparse.Namespace) -> str:
    from jobstore.settings import Settings

    if args.database_url:
        return str(args.database_url)
    settings = Settings(home=args.home) if args.home else Settings()
    return settings.database_url


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith(SQLITE_PREFIX) or url in (SQLITE_PREFIX, f"{SQLITE_PREFIX}:memory:"):
        return None
    return Path(url.removeprefix(SQLITE_PREFIX).split("?", 1)[0])


def _missing_sqlite_file(url: str) -> bool:
    path = _sqlite_path(url)
    return path is not None and not path.exists()  # reading it would create an empty file


def _make_sqlite_folder(url: str) -> None:
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
