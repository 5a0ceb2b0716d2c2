"""How a notification is signed: HMAC-SHA256 of ``<unix time>.<body>`` with the endpoint's secret.

The receiver recomputes it and refuses a timestamp outside its replay window (docs/notifications.md
shows the check in Python). The time is taken at each attempt, so a retry carries a fresh one.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "OCEC-Signature"
ID_HEADER = "OCEC-Notification-Id"  # the same for every attempt: the receiver's idempotency key
TYPE_HEADER = "OCEC-Notification-Type"
REPLAY_WINDOW_SECONDS = 300  # what docs/notifications.md tells receivers to accept


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex>``: the value of ``OCEC-Signature``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def headers(*, notification_id: str, kind: str, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "ocec-jobs-notifier",
        ID_HEADER: notification_id,
        TYPE_HEADER: kind,
        SIGNATURE_HEADER: signature_header(secret, timestamp, body),
    }
