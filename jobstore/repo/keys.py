"""API keys: random secrets shown once, stored as SHA-256 hashes, looked up by prefix, revocable.

Here (not in ``api``) because the ``ocec-jobs keys`` command and ``ocec-jobs up`` manage keys too
and may not import the API. A key is ``ocec_`` + 32 random bytes (URL-safe base64); the table keeps
its hash and its first ``PREFIX_LENGTH`` characters (an index for lookup, and what lists show).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, col, select

from jobstore.errors import JobStoreError
from jobstore.models import ApiKey
from jobstore.repo._base import Reader, connection_of, detached, now_or

KEY_PREFIX = "ocec_"
KEY_BYTES = 32
PREFIX_LENGTH = 12  # "ocec_" + 7 random characters: enough to narrow a lookup to one row
NAME_MAX = 100
MAX_KEY_LENGTH = 200  # a presented key longer than this is not one of ours: no lookup at all


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class ApiKeyError(JobStoreError, ValueError):
    code = "api-key"


class ApiKeyNotFoundError(ApiKeyError):
    code = "api-key-not-found"


class LastAdminKeyError(ApiKeyError):
    """Revoking it would leave nobody able to manage keys (except on the database's machine)."""

    code = "last-admin-key"


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: the record, and the secret — which exists nowhere else after this."""

    record: ApiKey
    secret: str


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


def actor_label(key: ApiKey) -> str:
    """How a key's actions are recorded (events, commands): its name and the start of its id."""
    return f"{key.name} (key {key.id[:8]})"


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise ApiKeyError(f"name must be 1 to {NAME_MAX} characters")
    if any(not ch.isprintable() for ch in name):
        raise ApiKeyError("name must not contain control characters")
    return name


def create_key(session: Session, *, name: str, role: Role | str, now: datetime | None = None) -> NewKey:
    secret = generate_key()
    record = ApiKey(
        name=check_name(name),
        role=Role(role).value,
        prefix=key_prefix(secret),
        key_hash=hash_key(secret),
        created_at=now_or(now),
    )
    session.add(record)
    session.flush()
    return NewKey(record, secret)


_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
# Built once and read as plain rows: every request asks (an ORM load costs twice the statement).
_BY_PREFIX = select(_KEYS).where(_KEYS.c.prefix == bindparam("prefix"))


def find_key(reader: Reader, presented: str) -> ApiKey | None:
    """The active key ``presented`` is, compared in constant time; ``None`` if none (or revoked).
    The key comes back detached (a snapshot of its row), whatever ``reader`` is."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_LENGTH:
        return None
    digest = hash_key(presented)
    candidates = connection_of(reader).execute(_BY_PREFIX, {"prefix": key_prefix(presented)}).all()
    match = None
    for candidate in candidates:  # compare every candidate: the time taken does not depend on which
        if hmac.compare_digest(candidate.key_hash, digest):
            match = candidate
    if match is None or match.revoked_at is not None:
        return None
    return detached(ApiKey, dict(match._mapping))


def get_key(session: Session, key_id: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise ApiKeyNotFoundError(f"no API key with id {key_id!r}")
    return key


def active_key(session: Session, key_id: str) -> ApiKey | None:
    key = session.get(ApiKey, key_id)
    return key if key is not None and key.revoked_at is None else None


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    query = select(ApiKey)
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    return list(session.exec(query.order_by(col(ApiKey.created_at), col(ApiKey.id))).all())


def count_keys(session: Session) -> int:
    """Every key ever made, revoked ones included (``up`` makes a first admin key only on zero)."""
    return int(session.exec(select(func.count()).select_from(ApiKey)).one())


def resolve_key_id(session: Session, id_or_prefix: str) -> str:
    """A full key id, from itself or from an unambiguous start of it (at least 4 characters)."""
    value = id_or_prefix.strip().lower()
    if session.get(ApiKey, value) is not None:
        return value
    if len(value) < 4 or not all(ch in "0123456789abcdef" for ch in value):
        raise ApiKeyNotFoundError(f"no API key with id {id_or_prefix!r}")
    ids = session.exec(select(ApiKey.id).where(col(ApiKey.id).startswith(value))).all()
    if len(ids) != 1:
        problem = "matches no key" if not ids else f"matches {len(ids)} keys; give more of the id"
        raise ApiKeyNotFoundError(f"{id_or_prefix!r} {problem}")
    return ids[0]


def revoke_key(session: Session, *, key_id: str, now: datetime | None = None) -> ApiKey:
    """Revoke a key (idempotent: a revoked key keeps its first revocation time); never the last
    active admin key (``LastAdminKeyError``)."""
    admins = _lock_active_admins(session)  # first, in id order: two revocations wait, never deadlock
    key = session.get(ApiKey, key_id, with_for_update=True, populate_existing=True)
    if key is None:
        raise ApiKeyNotFoundError(f"no API key with id {key_id!r}")
    if key.revoked_at is None and admins == [key.id]:
        raise LastAdminKeyError(
            f"{key.name!r} is the last active admin key: create another admin key before revoking it"
        )
    if key.revoked_at is None:
        key.revoked_at = now_or(now)
        session.add(key)
        session.flush()
    return key


def _lock_active_admins(session: Session) -> list[str]:
    query = select(ApiKey.id).where(ApiKey.role == Role.ADMIN.value, col(ApiKey.revoked_at).is_(None))
    return list(session.exec(query.order_by(col(ApiKey.id)).with_for_update()).all())


def needs_touch(key: ApiKey, now: datetime, min_interval: timedelta) -> bool:
    return key.last_used_at is None or key.last_used_at <= now - min_interval


def touch_key(session: Session, *, key_id: str, now: datetime, min_interval: timedelta) -> bool:
    """Set ``last_used_at`` unless it was set less than ``min_interval`` ago; True if written."""
    stale = col(ApiKey.last_used_at).is_(None) | (col(ApiKey.last_used_at) <= now - min_interval)
    result = session.execute(update(ApiKey).where(col(ApiKey.id) == key_id, stale).values(last_used_at=now))
    return bool(getattr(result, "rowcount", 0))
