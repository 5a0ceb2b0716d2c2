"""The real stack the steering tests drive: uvicorn serving the API on a free port, one real Celery
worker (``celery -A worker.app worker``, prefork, the real engine) on a Celery queue of its own on the
shared Redis, a PostgreSQL database of this test session, and operators with API keys.

Everything a test does goes through HTTP (``Operator`` = an httpx client with an API key); the
database is read only to explain a timeout (the worker log and the job's events are in the message).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from worker_harness import Harness

T = TypeVar("T")
FINAL = ("succeeded", "failed", "cancelled")
POLL_SECONDS = 0.05


@dataclass
class Operator:
    """One person at the API: their client (bearer key) and how the server records them."""

    http: httpx.Client
    actor: str

    def post(self, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.http.post(path, json=body, headers=headers)


@dataclass
class Steering:
    url: str
    harness: Harness
    alice: Operator
    bob: Operator
    timeout: float = 120.0
    jobs: list[str] = field(default_factory=list)

    # ---- requests ------------------------------------------------------------------------------
    def submit(self, name: str, **spec: Any) -> str:
        response = self.alice.post("/jobs", {"name": name, **spec})
        assert response.status_code == 201, response.text
        job_id = str(response.json()["id"])
        self.jobs.append(job_id)
        return job_id

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.alice.http.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def events(self, job_id: str, *kinds: str) -> list[dict[str, Any]]:
        """Every event of the job in seq order (all pages), optionally only these kinds."""
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            params: dict[str, Any] = {"after": after, "limit": 500, "kind": list(kinds)}
            page = self.alice.http.get(f"/jobs/{job_id}/events", params=params).json()
            found += page["data"]
            if page["next_after"] is None:
                return found
            after = page["next_after"]

    def metrics(self, job_id: str, *, superseded: bool = False) -> list[dict[str, Any]]:
        params = {"limit": 500, "include_superseded": str(superseded).lower()}
        response = self.alice.http.get(f"/jobs/{job_id}/metrics", params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def row(self, job_id: str, epoch: int) -> dict[str, Any]:
        [row] = [r for r in self.metrics(job_id) if r["epoch"] == epoch]
        return row

    # ---- waiting -------------------------------------------------------------------------------
    def wait(self, job_id: str, check: Callable[[], T | None], what: str, timeout: float | None = None) -> T:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.explain(job_id)}")
            time.sleep(POLL_SECONDS)

    def wait_state(self, job_id: str, *states: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            now = self.status(job_id)
            return now if now["state"] in states else None

        return self.wait(job_id, check, f"job {job_id} to become {'/'.join(states)}")

    def wait_row(self, job_id: str, epoch: int) -> dict[str, Any]:
        """The live metrics row of ``epoch`` as soon as the worker has recorded it."""

        def check() -> dict[str, Any] | None:
            rows = self.alice.http.get(
                f"/jobs/{job_id}/metrics", params={"after_epoch": epoch - 1, "limit": 1}
            ).json()["data"]
            return rows[0] if rows and rows[0]["epoch"] == epoch else None

        return self.wait(job_id, check, f"job {job_id} epoch {epoch}")

    def wait_event(self, job_id: str, kind: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            return next((e for e in self.events(job_id, kind) if match(e)), None)

        return self.wait(job_id, check, f"a {kind} event of job {job_id}")

    def explain(self, job_id: str) -> str:
        job = self.harness.job(job_id)
        events = [
            f"{e.seq} {e.kind} {e.to_state or ''} {e.reason[:160]}" for e in self.harness.events(job_id)
        ]
        logs = [f"--- {w.name} ---\n{w.log()[-6000:]}" for w in self.harness.workers]
        return "\n".join([f"state={job.state} attempt={job.attempt} epoch={job.epoch}", *events, *logs])
