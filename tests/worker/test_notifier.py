"""Webhooks end to end: jobs run by a real worker (fake engine) whose companion runs the notifier,
a receiver that is down and comes back, the API restarted in between, signatures checked with
the snippet of docs/notifications.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from worker_harness import Harness, wait_for

from api.settings import ApiSettings
from jobstore.settings import AuthMode
from tests.live_api import serve
from tests.webhook_receiver import Receiver, documented_verify, free_port

SECRET = "job-secret-0123456789"
# milliseconds, not the production seconds: many quick attempts while the receiver is down
FAST_NOTIFY = {
    "OCEC_NOTIFY_POLL_SECONDS": "0.1",
    "OCEC_NOTIFY_BACKOFF_SECONDS": "0.05",
    "OCEC_NOTIFY_BACKOFF_MAX_SECONDS": "0.5",
    "OCEC_NOTIFY_MAX_ATTEMPTS": "50",
}


def deliveries(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    page = http.get(f"/jobs/{job_id}/notifications", params={"limit": 100})
    assert page.status_code == 200, page.text
    return list(page.json()["data"])


def settled(
    http: httpx.Client, job_id: str, check: Callable[[dict[str, Any]], bool], count: int = 1
) -> list[dict[str, Any]] | None:
    """The job's deliveries once there are at least ``count`` and ``check`` holds for each."""
    rows = deliveries(http, job_id)
    return rows if len(rows) >= count and all(check(row) for row in rows) else None


def retried(row: dict[str, Any]) -> bool:
    return bool(row["attempts"] >= 2)


def delivered(row: dict[str, Any]) -> bool:
    return row["status"] == "delivered"


def api(harness: Harness) -> ApiSettings:
    s = harness.settings
    return ApiSettings(
        home=s.home, database_url=s.database_url, broker_url=s.broker_url, queue=s.queue, auth=AuthMode.OFF
    )


def test_a_receiver_down_during_the_runs_gets_everything_after_an_api_restart(harness: Harness) -> None:
    port = free_port()  # the receiver is down
    notify = {"urls": [f"http://127.0.0.1:{port}/hook"], "secret": SECRET}
    harness.dataset("high", f1=[0.9])  # stage 2's gate (0.8) passes, stage 3's (0.95) does not
    stage3 = {"epoch": 3, "gate_f1": 0.95, "on_gate_fail": "pause"}  # so the job waits for a decision
    run = {"data_root": "high", "epochs": 4, "unfreeze_backbone_epoch": 2, "stage3": stage3, "notify": notify}
    with serve(api(harness)) as base, httpx.Client(base_url=base, timeout=10) as http:
        # written by the API while no notifier runs anywhere
        early = http.post("/jobs", json={"name": "early", "data_root": "setB", "notify": notify}).json()["id"]
        assert http.post(f"/jobs/{early}/cancel", json={"reason": "not needed"}).status_code == 200
        waits = http.post("/jobs", json={"name": "waits", **run}).json()["id"]
        harness.start_worker(reaper=True, **FAST_NOTIFY)  # its companion reaps and notifies
        harness.wait_state(waits, "awaiting_decision")
        jobs = {
            early: ["job.finished"],
            waits: ["job.state_changed", "job.stage_changed", "job.awaiting_decision"],
        }
        for job_id, kinds in jobs.items():  # every notification tried at least twice, in vain
            failing = wait_for(lambda j=job_id, n=len(kinds): settled(http, j, retried, n), what=job_id)
            assert {(r["status"], r["last_status_code"]) for r in failing} == {("pending", None)}
            assert all(r["last_error"] and r["next_try_at"] for r in failing)

    with (
        Receiver(port) as receiver,
        serve(api(harness)) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        logs = {
            job_id: wait_for(lambda j=job_id: settled(http, j, delivered), what=job_id) for job_id in jobs
        }
        assert SECRET not in http.get(f"/jobs/{waits}").text
        posts = receiver.posts()

    for job_id, kinds in jobs.items():
        assert [r["kind"] for r in logs[job_id]] == kinds
        for row in logs[job_id]:  # refused while the receiver was down, then one 200
            assert [a["status_code"] for a in row["log"]] == [None] * (row["attempts"] - 1) + [200]
            assert row["log"][0]["error"] and row["attempts"] >= 2
    bodies = [json.loads(post.body) for post in posts]
    assert sorted(b["id"] for b in bodies) == sorted(
        r["notification_id"] for rows in logs.values() for r in rows
    )
    verify = documented_verify()
    assert all(verify(SECRET, post.headers["ocec-signature"], post.body) for post in posts)
    [waiting] = [b for b in bodies if b["type"] == "job.awaiting_decision"]
    assert waiting["job"]["id"] == waits and waiting["job"]["pending_decision"]
