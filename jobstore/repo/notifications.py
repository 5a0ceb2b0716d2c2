"""The notification outbox and its deliveries (docs/notifications.md).

``enqueue`` is called by ``transition`` and ``record_stage_change`` in their own transaction, so a
notification exists exactly when its event does: nothing is lost when the API or a worker stops
right after, and nothing is sent for a change that rolled back. It writes one row and never talks
to the network; the notifier (``jobstore.notify.deliver``) does the rest in its own transactions:

1. ``fan_out``: each new notification becomes one delivery per URL (the server's ``notify_urls``
   and the job's ``spec.notify.urls``; a URL in both is the job's);
2. ``claim``: a due delivery is taken for one attempt (its ``next_try_at`` pushed past the attempt,
   so another notifier leaves it alone; a notifier that dies mid-attempt is retried after that);
3. ``record_attempt``: the answer is logged; a failure waits ``backoff`` before the next try,
   up to ``max_attempts`` in all, after which the delivery is ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from jobstore.models import Job, JobEvent, Notification, NotificationDelivery
from jobstore.notify.events import notify_type, payload
from jobstore.repo._base import clip

ERROR_MAX = 500
RESPONSE_MAX = 256  # characters of a receiver's answer kept in the log: enough to say why, no more


class Scope(StrEnum):
    SERVER = "server"  # signed with the server's notify_secret
    JOB = "job"  # signed with the job's spec.notify.secret


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after max_attempts


def enqueue(session: Session, job: Job, event: JobEvent) -> Notification | None:
    """Add the outbox row that tells ``event`` (None when its kind is not told)."""
    kind = notify_type(event)
    if kind is None:
        return None
    row = Notification(job_id=job.id, seq=event.seq, kind=kind.value, payload=payload(job, event, kind))
    session.add(row)
    return row


def job_urls(spec: dict[str, Any]) -> list[str]:
    notify = spec.get("notify") or {}
    return [str(url) for url in notify.get("urls") or []]


def job_secret(spec: dict[str, Any]) -> str | None:
    secret = (spec.get("notify") or {}).get("secret")
    return str(secret) if secret else None


def has_fresh(session: Session) -> bool:
    """Whether some notification waits to be fanned out."""
    query = select(Notification.id).where(col(Notification.fanned_out).is_(False)).limit(1)
    return session.exec(query).first() is not None


def fan_out(session: Session, *, server_urls: Sequence[str], now: datetime, limit: int = 100) -> int:
    """Deliveries for up to ``limit`` new notifications; returns how many notifications were fanned out
    (a notification no URL asks for counts, and is deleted: with no webhooks the outbox stays empty)."""
    # Oldest first, so deliveries (due in id order) go out in the order the events happened; without
    # an order PostgreSQL may hand back a job's later event first.
    ids = session.exec(
        select(Notification.id)
        .where(col(Notification.fanned_out).is_(False))
        .order_by(col(Notification.created_at), col(Notification.job_id), col(Notification.seq))
        .limit(limit)
    ).all()
    done = 0
    for notification_id in ids:
        row = session.get(Notification, notification_id, with_for_update=True, populate_existing=True)
        if row is None or row.fanned_out:  # another notifier took it meanwhile
            continue
        job = session.get(Job, row.job_id)
        targets = {url: Scope.SERVER for url in server_urls}
        targets |= {url: Scope.JOB for url in job_urls(job.spec if job else {})}
        if not targets:  # no URL asks for it: nothing would ever send it, so it is not kept
            session.delete(row)
            done += 1
            continue
        for url, scope in targets.items():
            session.add(
                NotificationDelivery(
                    notification_id=row.id,
                    job_id=row.job_id,
                    kind=row.kind,
                    url=url,
                    scope=scope.value,
                    next_try_at=now,
                    created_at=now,
                )
            )
        row.fanned_out = True
        session.add(row)
        done += 1
    return done


def due(session: Session, *, now: datetime, limit: int = 50) -> list[int]:
    """Ids of pending deliveries whose next try is due, oldest first."""
    query = (
        select(NotificationDelivery.id)
        .where(NotificationDelivery.status == DeliveryStatus.PENDING)
        .where(col(NotificationDelivery.next_try_at) <= now)  # a pending delivery always has one
        .order_by(col(NotificationDelivery.next_try_at), col(NotificationDelivery.id))
        .limit(limit)
    )
    return [delivery_id for delivery_id in session.exec(query).all() if delivery_id is not None]


@dataclass(frozen=True)
class Claimed:
    """What one attempt sends: the body's fields, where, and the secret that signs it (None: none known)."""

    delivery_id: int
    attempt: int
    notification_id: str
    kind: str
    url: str
    body: dict[str, Any]
    secret: str | None


def claim(
    session: Session, *, delivery_id: int, now: datetime, hold_seconds: float, server_secret: str | None
) -> Claimed | None:
    """Take a due delivery for one attempt, or None when it is no longer due (another notifier has it)."""
    row = session.get(NotificationDelivery, delivery_id, with_for_update=True, populate_existing=True)
    if row is None or row.status != DeliveryStatus.PENDING:
        return None
    if row.next_try_at is not None and row.next_try_at > now:
        return None
    notification = session.get(Notification, row.notification_id)
    job = session.get(Job, row.job_id)
    if notification is None:
        return None
    row.attempts += 1
    row.next_try_at = now + timedelta(seconds=hold_seconds)
    session.add(row)
    secret = server_secret if row.scope == Scope.SERVER else job_secret(job.spec if job else {})
    body = {"id": notification.id, **notification.payload}
    return Claimed(row.id or delivery_id, row.attempts, notification.id, row.kind, row.url, body, secret)


@dataclass(frozen=True)
class AttemptResult:
    """A receiver's answer (``status_code``) or why there was none (``error``)."""

    status_code: int | None = None
    error: str = ""
    response: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class RetryPolicy:
    backoff_seconds: float
    backoff_max_seconds: float
    max_attempts: int

    def wait(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failure: doubling from ``backoff_seconds``, capped."""
        return min(self.backoff_seconds * 2.0 ** min(attempts - 1, 60), self.backoff_max_seconds)


def record_attempt(
    session: Session, *, claimed: Claimed, result: AttemptResult, now: datetime, policy: RetryPolicy
) -> NotificationDelivery | None:
    """Log one attempt and decide what comes next: delivered, another try after the backoff, or failed."""
    row = session.get(NotificationDelivery, claimed.delivery_id, with_for_update=True, populate_existing=True)
    if row is None or row.status != DeliveryStatus.PENDING:
        return row
    row.log = [*row.log, _entry(claimed.attempt, result, now)]
    row.last_status_code = result.status_code
    row.last_error = clip(result.error, ERROR_MAX)
    if result.ok:
        row.status, row.delivered_at, row.next_try_at = DeliveryStatus.DELIVERED, now, None
    elif row.attempts >= policy.max_attempts:
        row.status, row.next_try_at = DeliveryStatus.FAILED, None
    else:
        row.next_try_at = now + timedelta(seconds=policy.wait(row.attempts))
    session.add(row)
    return row


def _entry(attempt: int, result: AttemptResult, now: datetime) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "at": now.isoformat(),
        "status_code": result.status_code,
        "error": clip(result.error, ERROR_MAX),
        "response": clip(result.response, RESPONSE_MAX),
    }


def list_deliveries(
    session: Session, *, job_id: str, after_id: int = 0, limit: int = 100
) -> list[NotificationDelivery]:
    """A job's deliveries with ``id > after_id`` in id (creation) order, at most ``limit``."""
    query = (
        select(NotificationDelivery)
        .where(NotificationDelivery.job_id == job_id, col(NotificationDelivery.id) > after_id)
        .order_by(col(NotificationDelivery.id))
        .limit(limit)
    )
    return list(session.exec(query).all())
