"""Dashboard sessions signed out on the server: a sign-out records the session's nonce until the
session would have expired, so the old cookie stops working at once (the cookie itself is signed
and self-contained; this is its revocation list, kept short by dropping expired entries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col

from jobstore.models import RevokedSession


def revoke_session(session: Session, *, nonce: str, key_id: str, expires_at: datetime, now: datetime) -> None:
    """Record a signed-out session (idempotent) and forget every entry that has expired anyway."""
    session.execute(delete(RevokedSession).where(col(RevokedSession.expires_at) <= now))
    if session.get(RevokedSession, nonce) is None:
        session.add(RevokedSession(nonce=nonce, key_id=key_id, expires_at=expires_at))
        session.flush()


def is_revoked(session: Session, nonce: str) -> bool:
    return session.get(RevokedSession, nonce) is not None
