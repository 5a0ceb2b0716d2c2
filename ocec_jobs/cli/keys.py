"""``ocec-jobs keys create|list|revoke``: API keys, straight in the database the settings name.

A new key is printed once — alone on stdout, so ``KEY=$(ocec-jobs keys create …)`` works — and
only its SHA-256 is stored. ``ocec-jobs up`` calls ``ensure_first_admin`` to make the first admin key.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobstore.text import visible
from ocec_jobs.cli._local import DatabaseUnusableError as _DatabaseUnusableError
from ocec_jobs.cli._local import local_database as _database
from ocec_jobs.cli.main import SubParsers

if TYPE_CHECKING:
    from jobstore.models import ApiKey
    from jobstore.settings import Settings

ROLES = ("viewer", "operator", "admin")
FIRST_ADMIN = "admin"
SHOWN_ONCE = "This is the only time the key is shown: store it now (the server keeps only its hash)."
COLUMNS = ("id", "prefix", "role", "name", "created", "last used", "revoked")


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser("keys", help="create, list and revoke API keys")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home", default=None, help="state directory of an embedded setup (default: OCEC_HOME, ./.ocec-jobs)"
    )
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    create = actions.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("--name", help="who or what uses it, recorded as the actor (default: the role)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.set_defaults(handler=run_create)
    listing = actions.add_parser("list", parents=[common], help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(handler=run_list)
    revoke = actions.add_parser(
        "revoke", parents=[common], help="revoke a key: it and its dashboard sessions stop working"
    )
    revoke.add_argument("key_id", metavar="ID", help="the key's id, or an unambiguous start of it")
    revoke.set_defaults(handler=run_revoke)


def _fail(message: str, code: int) -> int:
    print(f"ocec-jobs keys: {message}", file=sys.stderr)
    return code


def run_create(args: argparse.Namespace) -> int:
    from jobstore.repo import keys

    try:
        with _database(args, write=True) as session:
            new = keys.create_key(session, name=args.name or args.role, role=args.role)
            key_id, name, role = new.record.id, new.record.name, new.record.role
    except _DatabaseUnusableError as exc:
        return _fail(str(exc), 1)
    except keys.ApiKeyError as exc:
        return _fail(str(exc), 2)
    print(new.secret, flush=True)
    print(f"created API key {key_id} ({name}, {role}). {SHOWN_ONCE}", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from jobstore.repo import keys

    try:
        with _database(args, write=False) as session:
            rows = [_row(key) for key in keys.list_keys(session)]
    except _DatabaseUnusableError as exc:
        return _fail(str(exc), 1)
    print(json.dumps(rows, indent=2) if args.json else _table(rows))
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from jobstore.repo import keys

    try:
        with _database(args, write=True) as session:
            key = keys.revoke_key(session, key_id=keys.resolve_key_id(session, args.key_id))
            key_id, name = key.id, key.name
    except (_DatabaseUnusableError, keys.ApiKeyNotFoundError, keys.LastAdminKeyError) as exc:
        return _fail(str(exc), 1)
    print(f"revoked API key {key_id} ({visible(name)})")
    return 0


def ensure_first_admin(settings: Settings) -> str | None:
    """Create an admin key if the database holds no key at all; return it (to print once), else None."""
    from jobstore.db import engine_from_settings, write_transaction
    from jobstore.repo import keys

    engine = engine_from_settings(settings)
    try:
        with write_transaction(engine) as session:  # counted and created under the write lock
            if keys.count_keys(session) > 0:
                return None
            return keys.create_key(session, name=FIRST_ADMIN, role=keys.Role.ADMIN).secret
    finally:
        engine.dispose()


def active_keys(settings: Settings) -> int:
    from jobstore.db import engine_from_settings, read_session
    from jobstore.repo import keys

    engine = engine_from_settings(settings)
    try:
        with read_session(engine) as session:
            return len(keys.list_keys(session, include_revoked=False))
    finally:
        engine.dispose()


def _row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "role": key.role,
        "name": key.name,
        "created": _when(key.created_at),
        "last used": _when(key.last_used_at),
        "revoked": _when(key.revoked_at),
    }


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _table(rows: Sequence[dict[str, Any]]) -> str:
    shown = [[visible(str(row[c] if row[c] is not None else "-")) for c in COLUMNS] for row in rows]
    cells = [list(COLUMNS), *shown]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells)
    return "\n".join(line.rstrip() for line in lines)
