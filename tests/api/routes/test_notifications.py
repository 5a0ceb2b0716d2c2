"""GET /jobs/{id}/notifications over real HTTP: the delivery log, paged; a job's secret never shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from jobstore.notify.deliver import deliver
from jobstore.settings import Settings
from tests.webhook_receiver import Receiver

SECRET = "job-secret-0123456789"


def test_the_log_shows_each_delivery_with_its_attempts_in_pages_and_never_the_secret(
    http: httpx.Client, app: FastAPI, job_body: dict[str, Any]
) -> None:
    with Receiver() as job_hook, Receiver(status=500, answer=b"try later") as ops_hook:
        notify = {"urls": [job_hook.url], "secret": SECRET}
        bad = http.post("/jobs", json={**job_body, "notify": {**notify, "urls": ["file:///etc/passwd"]}})
        assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["notify.urls.0"]
        created = http.post("/jobs", json={**job_body, "notify": notify})
        job_id = created.json()["id"]
        status = http.get(f"/jobs/{job_id}")
        assert status.json()["spec"]["notify"] == {"urls": notify["urls"]}
        assert SECRET not in created.text + status.text  # never shown again
        assert http.get(f"/jobs/{job_id}/notifications").json() == {"data": [], "next_after": None}
        assert http.post(f"/jobs/{job_id}/cancel", json={"reason": "wrong data"}).status_code == 200
        server: Settings = app.state.settings
        ops = {"notify_urls": [ops_hook.url], "notify_secret": SecretStr(SECRET)}
        settings = server.model_copy(update=ops)
        deliver(app.state.resources.engine, settings=settings, clock=lambda: datetime.now(UTC))

    first = http.get(f"/jobs/{job_id}/notifications", params={"limit": 1}).json()
    second = http.get(f"/jobs/{job_id}/notifications", params={"after": first["next_after"]}).json()
    assert second["next_after"] is None
    rows = {row["url"]: row for row in first["data"] + second["data"]}
    delivered, retrying = rows[job_hook.url], rows[ops_hook.url]
    assert (delivered["kind"], delivered["scope"]) == ("job.finished", "job")
    assert delivered["status"] == "delivered"
    assert [(a["attempt"], a["status_code"]) for a in delivered["log"]] == [(1, 200)]
    assert (retrying["scope"], retrying["status"], retrying["last_status_code"]) == ("server", "pending", 500)
    assert retrying["next_try_at"] is not None and retrying["log"][0]["response"] == "try later"
    assert delivered["notification_id"] == retrying["notification_id"]

    missing = http.get("/jobs/nosuchjob/notifications")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
