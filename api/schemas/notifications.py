"""A job's webhook deliveries as ``GET /jobs/{id}/notifications`` shows them (no secrets, no bodies)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.common import _Public


class DeliveryAttempt(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = Field(description="the receiver's HTTP status; null: no answer (see error)")
    error: str = Field(description="why the attempt got no answer (refused, timed out …); empty if it did")
    response: str = Field(description="the first 256 bytes of the receiver's answer, as text")


class NotificationPublic(_Public):
    id: int = Field(description="the delivery's id (the page cursor)")
    notification_id: str = Field(description="sent as OCEC-Notification-Id: the receiver's idempotency key")
    kind: str = Field(
        description="job.state_changed | job.stage_changed | job.awaiting_decision | job.finished"
    )
    url: str
    scope: str = Field(description="server: one of OCEC_NOTIFY_URLS; job: one of the spec's notify.urls")
    status: str = Field(description="pending | delivered | failed (gave up after OCEC_NOTIFY_MAX_ATTEMPTS)")
    attempts: int
    next_try_at: datetime | None = Field(description="when the next attempt is due; null once settled")
    last_status_code: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    log: list[DeliveryAttempt] = Field(description="every attempt, oldest first")


class NotificationsPage(BaseModel):
    data: list[NotificationPublic]
    next_after: int | None = Field(description="pass as ?after= for the next page; null: no more")
