"""Clean shutdown, several times in one job, and a SIGTERM to the API with requests in flight.

- SIGTERM to the worker running the job (a deploy, ``docker stop``): at the next batch boundary the
  engine writes its interrupt checkpoint (epoch and batch), the attempt ends ``preempted``, the job
  is re-queued and a waiting worker resumes it at that exact batch. Three times in one job, each in
  another epoch. No epoch is replayed (nothing superseded) and the job ends like the reference.
  Preemptions with a completed epoch in between never count against any budget (here the preempt
  budget is 1 and three preemptions pass).
- SIGTERM to the API while clients submit jobs and follow a stream: every request either completes
  or fails cleanly (the connection is refused or cut); a client that retries with its
  ``Idempotency-Key`` gets the job created the first time or a new one, never two; every job ends up
  with a message on the queue (the reaper re-sends one the API could not).
"""

from __future__ import annotations

import base64
import itertools
import json
import signal
import subprocess
import sys
import threading
import uuid

import httpx
import redis

from tests.api.sse_client import messages
from tests.faults.checks import assert_like_reference
from tests.faults.harness import FaultHarness, wait_for
from tests.faults.processes import REPO, ApiProcess
from tests.faults.services import PrivateRedis
from tests.faults.world import EPOCHS, SPEC


def test_three_sigterms_resume_at_the_batch_each_time(fx: FaultHarness) -> None:
    env = {"OCEC_PREEMPT_BUDGET": "1"}
    current = fx.start_worker("w1", reaper=True, **env)
    job_id = fx.submit("sigterms")
    target = 1
    for n, fraction in enumerate((0.4, 0.6, 0.3), start=2):
        standby = fx.start_worker(f"w{n}", reaper=True, **env)  # the replacement, already up
        spot = fx.mid_epoch(job_id, target, fraction)
        fx.record("sigterm-worker", job_id, spot.where)
        assert current.stop(timeout=90) == 0, "warm shutdown completed"
        job = fx.job(job_id)
        assert job.attempt == n and job.state in ("queued", "running"), (job.state, job.state_reason)
        assert job.resume_from["kind"] == "interrupt" and job.resume_from["batch"] > 0
        current, target = standby, spot.epoch + 1

    fx.wait_state(job_id, "succeeded", "failed", timeout=180)
    assert_like_reference(fx, job_id)
    attempts = fx.attempts(job_id)
    assert [a.outcome for a in attempts] == ["preempted"] * 3 + ["completed"]
    for before, after in itertools.pairwise(attempts):
        assert after.resumed_from == f"{job_id}/interrupt.pt" and after.restored_batch, "resumed mid-epoch"
        assert "SIGTERM" in before.reason
    assert [e.evidence["matches"] for e in fx.events(job_id, "restored")][1:] == [True] * 3
    assert fx.metrics(job_id, live=False) == fx.metrics(job_id), "no epoch replayed"
    assert fx.job(job_id).infra_retries == 0


def test_sigterm_to_the_api_loses_no_request(fx: FaultHarness, private_redis: PrivateRedis) -> None:
    api = fx.start_api()
    blocker = fx.submit("streamed", dispatch=False)  # a job whose stream is open during the shutdown
    outcomes: dict[str, str] = {}
    stop = threading.Event()

    def client() -> None:  # submits until its first failure, which it retries after the restart
        while not stop.is_set():
            key = uuid.uuid4().hex
            outcomes[key] = _post(api.base, key)
            if outcomes[key] != "201":
                return

    stream_closed = threading.Event()

    def follower() -> None:
        try:
            with httpx.stream("GET", f"{api.base}/jobs/{blocker}/stream", timeout=60) as response:
                for message in messages(response):
                    if message.event == "end":
                        return
        except httpx.HTTPError:  # the server went away mid-stream (incomplete chunked body)
            pass
        stream_closed.set()  # ended without an ``end`` event: the client knows it must reconnect

    threads = [threading.Thread(target=client) for _ in range(4)] + [threading.Thread(target=follower)]
    for thread in threads:
        thread.start()
    wait_for(lambda: sum(o == "201" for o in outcomes.values()) >= 8, 60, "requests in flight")
    fault = fx.record("sigterm-api", blocker, "requests in flight")
    api.signal(signal.SIGTERM)
    # uvicorn drains in-flight requests, then re-raises the SIGTERM it caught (exit status -15)
    assert api.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Finished server process" in api.log(), "a graceful shutdown, not a kill"
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert stream_closed.is_set()

    cut = sum(o != "201" for o in outcomes.values())
    fault.where = f"{len(outcomes) - cut} answered, {cut} cut"
    restarted = ApiProcess(api.env, api.log_path, api.port)
    fx.apis.append(restarted)
    restarted.start()
    for key, outcome in list(outcomes.items()):
        if outcome != "201":  # the client saw an error: retry with the same key
            outcomes[key] = _post(restarted.base, key)
    assert set(outcomes.values()) <= {"201", "200"}, outcomes
    with fx.db.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT idempotency_key, state FROM job WHERE idempotency_key IS NOT NULL"
        ).all()
    assert sorted(k for k, _ in rows) == sorted(outcomes), "one job per key: none lost, none doubled"
    assert {state for _, state in rows} == {"queued"}

    reaper = subprocess.Popen(
        [sys.executable, "-m", "worker.reaper"],
        env={**fx.env, "OCEC_REDISPATCH_AFTER_SECONDS": "1"}, cwd=REPO,
    )  # fmt: skip
    try:
        ids = {job_id for (job_id,) in _ids(fx)}
        wait_for(lambda: ids <= _queued_ids(private_redis, fx.settings.queue), 60, "a message for every job")
    finally:
        reaper.send_signal(signal.SIGTERM)
        reaper.wait(timeout=30)


def _post(base: str, key: str) -> str:
    body = {**SPEC, "name": f"req-{key[:8]}", "epochs": EPOCHS}
    try:
        response = httpx.post(f"{base}/jobs", json=body, headers={"Idempotency-Key": key}, timeout=30)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return str(response.status_code)


def _ids(fx: FaultHarness) -> list[tuple[str]]:
    with fx.db.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT id FROM job").all()]


def _queued_ids(server: PrivateRedis, queue: str) -> set[str]:
    """The job ids of the ``run_job`` messages waiting in the queue (kombu's Redis list)."""
    client = redis.Redis.from_url(server.url)
    found = set()
    for raw in client.lrange(queue, 0, -1):
        payload = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(payload["body"]))
        found.add(str(args[0]))
    client.close()
    return found
