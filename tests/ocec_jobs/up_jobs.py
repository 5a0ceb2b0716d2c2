"""Jobs of the fake engine on a real ``ocec-jobs up``, over HTTP: for the supervision tests.

The worker runs ``tests/worker/fake_engine.py`` (``OCEC_ENGINE=fake_engine:train``) on a dataset
that is only its script, with short leases so a lost worker is noticed in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.ocec_jobs.up_server import Server

REPO = Path(__file__).resolve().parents[2]
FAKE = {
    "OCEC_ENGINE": "fake_engine:train",
    "PYTHONPATH": f"{REPO}:{REPO / 'tests' / 'worker'}",
    "OCEC_HEARTBEAT_SECONDS": "0.5",
    "OCEC_LEASE_SECONDS": "4",
    "OCEC_REAPER_INTERVAL_SECONDS": "0.5",
}
DATASET = "setB"


def fake_dataset(folder: Path, **script: Any) -> None:
    """The fake engine's script as dataset ``setB`` of the home that ``start_up(folder)`` uses."""
    import sys

    sys.path.insert(0, str(REPO / "tests" / "worker"))
    from fake_engine import write_script

    write_script(folder / "home" / "data" / DATASET, **script)


def client(server: Server) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.key}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def submit(http: httpx.Client, name: str, epochs: int) -> str:
    answer = http.post("/jobs", json={"name": name, "data_root": DATASET, "epochs": epochs})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def wait_job(
    http: httpx.Client, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            job: dict[str, Any] = http.get(f"/jobs/{job_id}").json()
        except httpx.TransportError:
            job = {}
        if job and done(job):
            return job
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}: {job}"
        time.sleep(0.2)


def epochs_recorded(http: httpx.Client, job_id: str) -> list[int]:
    rows = http.get(f"/jobs/{job_id}/metrics", params={"limit": 500}).json()["data"]
    return [int(row["epoch"]) for row in rows]


def wait_workers_ok(http: httpx.Client, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (ready := http.get("/readyz").json())["checks"].get("workers") != "ok":
        assert time.monotonic() < deadline, f"no live worker after {timeout:.0f}s: {ready}"
        time.sleep(0.3)
    return dict(ready)
