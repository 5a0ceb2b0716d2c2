"""Restart the API mid-job (kill -9 of ``ocec-jobs api``, then a new one on the same port).

The job does not notice: the API only reads the database and publishes messages. After the restart
the status and the metrics are served again, and a stream resumed with ``Last-Event-ID`` continues
exactly after the last event the client saw: no gap, no repeat, one ``metric`` per epoch, then
``end``.
"""

from __future__ import annotations

import httpx

from tests.api.sse_client import Message, messages, read_until
from tests.faults.checks import assert_like_reference
from tests.faults.harness import LONG_LEASE, FaultHarness
from tests.faults.processes import ApiProcess
from tests.faults.world import EPOCHS, SPEC


def test_api_restart_mid_job_and_stream_resumes_without_gaps(fx: FaultHarness) -> None:
    api = fx.start_api(**LONG_LEASE)
    fx.start_worker("w1", reaper=True, **LONG_LEASE)
    response = httpx.post(f"{api.base}/jobs", json={**SPEC, "name": "api-restart"}, timeout=30)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]

    fx.wait_epoch(job_id, 2, timeout=120)
    before = _read(api, job_id, None, stop_after_metric=2)
    assert [m.json()["epoch"] for m in before if m.event == "metric"] == [1, 2]
    last_seen = before[-1].id
    where = fx.mid_epoch(job_id, 2, 0.3).where
    fx.record("api-kill-9", job_id, where)
    api.crash()

    fx.wait_epoch(job_id, 3, timeout=120)  # the job went on without an API
    restarted = ApiProcess(api.env, api.log_path, api.port)
    fx.apis.append(restarted)
    restarted.start()
    status = httpx.get(f"{restarted.base}/jobs/{job_id}", timeout=10).json()
    # (on a slow box the job may even have finished while the API was down)
    assert status["state"] in ("running", "succeeded") and status["epoch"] >= 3 and status["attempt"] == 1
    after = _read(restarted, job_id, last_seen, stop_after_metric=None)

    seqs = [int(m.id) for m in before + after if m.id is not None]
    assert seqs == list(range(1, len(seqs) + 1)), "event ids continue without gap or repeat"
    epochs = [m.json()["epoch"] for m in before + after if m.event == "metric"]
    assert epochs == list(range(1, EPOCHS + 1))
    assert after[-1].event == "end" and after[-1].json()["state"] == "succeeded"
    metrics = httpx.get(f"{restarted.base}/jobs/{job_id}/metrics", timeout=10).json()["data"]
    assert [row["epoch"] for row in metrics] == list(range(1, EPOCHS + 1))
    assert_like_reference(fx, job_id)
    assert len(fx.attempts(job_id)) == 1


def _read(api: ApiProcess, job_id: str, last_id: str | None, stop_after_metric: int | None) -> list[Message]:
    """Stream messages until the ``stop_after_metric``-th metric (or ``end``); resume after ``last_id``."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    seen: list[Message] = []
    with httpx.stream("GET", f"{api.base}/jobs/{job_id}/stream", headers=headers, timeout=120) as response:
        assert response.status_code == 200
        stream = messages(response)
        if stop_after_metric is None:
            return read_until(stream, "end", limit=1000)
        metrics = 0
        for message in stream:
            seen.append(message)
            metrics += message.event == "metric"
            if metrics >= stop_after_metric:
                break
    return seen
