"""Dashboard sessions: a signed, self-contained cookie naming a key (never containing it), and the
CSRF token derived from it. Cookie and header names are a contract with the dashboard's JavaScript
(docs/security.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

SESSION_COOKIE = "ocec_session"
CSRF_COOKIE = "ocec_csrf"
CSRF_HEADER = "X-CSRF-Token"
VERSION = "v1"
MAX_COOKIE_LENGTH = 512


@dataclass(frozen=True)
class SessionClaims:
    key_id: str
    expires: int  # unix seconds
    nonce: str

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


class SessionSigner:
    """HMAC-SHA256 with one server secret; a domain label keeps session and CSRF MACs apart."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(self, key_id: str, now: datetime, ttl_seconds: int) -> tuple[str, SessionClaims]:
        claims = SessionClaims(key_id, int(now.timestamp()) + ttl_seconds, secrets.token_urlsafe(16))
        payload = _payload(claims)
        return f"{payload}.{self._mac('session', payload)}", claims

    def verify(self, value: str, now: datetime) -> SessionClaims | None:
        """The claims of a cookie this server signed and that has not expired, else ``None``."""
        if len(value) > MAX_COOKIE_LENGTH:
            return None
        payload, _, signature = value.rpartition(".")
        parts = payload.split(".")
        if len(parts) != 4 or parts[0] != VERSION or not (parts[2].isascii() and parts[2].isdigit()):
            return None
        if not _same(self._mac("session", payload), signature):
            return None
        claims = SessionClaims(parts[1], int(parts[2]), parts[3])
        return claims if claims.expires > now.timestamp() else None

    def csrf_token(self, claims: SessionClaims) -> str:
        return self._mac("csrf", claims.nonce)

    def csrf_matches(self, claims: SessionClaims, presented: str | None) -> bool:
        return presented is not None and _same(self.csrf_token(claims), presented)

    def _mac(self, label: str, message: str) -> str:
        digest = hmac.new(self._secret, f"{label}\0{message}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _same(expected: str, presented: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input (headers are latin-1)."""
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogateescape"))


def _payload(claims: SessionClaims) -> str:
    return f"{VERSION}.{claims.key_id}.{claims.expires}.{claims.nonce}"
