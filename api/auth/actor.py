"""Who is acting on a request: an API key (bearer or dashboard session), or nobody in particular
when auth is off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from jobstore.repo.keys import Role

ANONYMOUS = "anonymous"


class AuthVia(StrEnum):
    BEARER = "bearer"
    SESSION = "session"
    OFF = "off"  # auth is turned off (OCEC_AUTH=off)


@dataclass(frozen=True)
class Actor:
    """Recorded on every event and command (``name``); ``owner`` scopes idempotency keys and quotas."""

    name: str
    owner: str = ""  # the API key's id; "" when auth is off
    role: Role = Role.VIEWER
    via: AuthVia = AuthVia.OFF
    key_id: str | None = None
    key_name: str | None = None
    expires_at: datetime | None = None  # of the dashboard session
    csrf_token: str | None = None  # of the dashboard session
    session_nonce: str | None = None  # of the dashboard session: what a sign-out revokes
