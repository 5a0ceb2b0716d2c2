"""The notifier: one pass over the outbox (``deliver``), run every ``notify_poll_seconds`` where the
reaper runs (``worker.reaper``: a worker's companion, ``ocec-jobs up``, ``python -m worker.reaper``).

Each pass fans new notifications out to their URLs, then makes one attempt at each due delivery, in
short transactions of its own: the HTTP call happens outside any transaction, so a slow receiver
holds no lock and never delays training (the training path only wrote the outbox row). Several
notifiers may run at once: ``claim`` hands each attempt to one of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine

from jobstore.db import read_session, write_transaction
from jobstore.notify import http
from jobstore.notify.signing import headers
from jobstore.repo import notifications as outbox
from jobstore.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    fanned_out: int = 0  # notifications turned into deliveries
    delivered: int = 0
    retrying: int = 0  # failed attempts with another try ahead
    failed: int = 0  # deliveries given up
    errors: int = 0  # deliveries whose handling raised (logged; retried next pass)

    def counts(self) -> dict[str, int]:
        return asdict(self)


def deliver(
    engine: Engine,
    *,
    settings: Settings,
    clock: Callable[[], datetime],
) -> DeliveryReport:
    """One pass: fan out, then one attempt at every due delivery (see the module docstring)."""
    report = DeliveryReport()
    with read_session(engine) as session:  # idle passes take no write lock (SQLite has one for all)
        fresh = outbox.has_fresh(session)
    if fresh:
        with write_transaction(engine) as session:
            report.fanned_out = outbox.fan_out(session, server_urls=settings.notify_urls, now=clock())
    with read_session(engine) as session:
        due = outbox.due(session, now=clock())
    if not due:
        return report
    with http.Sender(settings.notify_timeout_seconds) as sender:
        for delivery_id in due:
            try:
                _attempt(engine, delivery_id, settings, clock, sender, report)
            except Exception:
                log.exception("notification delivery %s failed", delivery_id)
                report.errors += 1
    return report


def _attempt(
    engine: Engine,
    delivery_id: int,
    settings: Settings,
    clock: Callable[[], datetime],
    post: http.Post,
    report: DeliveryReport,
) -> None:
    server_secret = settings.notify_secret.get_secret_value() if settings.notify_secret else None
    with write_transaction(engine) as session:
        claimed = outbox.claim(
            session,
            delivery_id=delivery_id,
            now=clock(),
            hold_seconds=2 * settings.notify_timeout_seconds + 5,
            server_secret=server_secret,
        )
    if claimed is None:
        return
    result = _send(claimed, settings, clock, post)
    policy = outbox.RetryPolicy(
        settings.notify_backoff_seconds, settings.notify_backoff_max_seconds, settings.notify_max_attempts
    )
    with write_transaction(engine) as session:
        row = outbox.record_attempt(session, claimed=claimed, result=result, now=clock(), policy=policy)
    status = row.status if row else None
    if status == outbox.DeliveryStatus.DELIVERED:
        report.delivered += 1
    elif status == outbox.DeliveryStatus.FAILED:
        report.failed += 1
    else:
        report.retrying += 1


def _send(
    claimed: outbox.Claimed, settings: Settings, clock: Callable[[], datetime], post: http.Post
) -> outbox.AttemptResult:
    if claimed.secret is None:  # the server's secret was removed, or the job's spec lost its notify
        return outbox.AttemptResult(error="no secret to sign with: not sent")
    body = json.dumps(claimed.body, separators=(",", ":"), sort_keys=True).encode()
    signed = headers(
        notification_id=claimed.notification_id,
        kind=claimed.kind,
        secret=claimed.secret,
        timestamp=int(clock().timestamp()),
        body=body,
    )
    return post(claimed.url, body, signed)
