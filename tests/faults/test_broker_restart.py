"""Restart Redis (the broker) mid-job: a private ``redis-server`` without persistence is killed -9 and
started again on the same port, so every message in it is lost, as in a real restart.

The running job carries on (its message was acknowledged when it started: configuration A, early
ack); the worker and the API reconnect by themselves; the job queued behind it, whose message died
with Redis, is sent again by the reaper (queued and not claimed ``redispatch_after_seconds`` after
its dispatch) and runs once, on a second worker started after the restart.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import redis

from tests.faults.checks import assert_like_reference
from tests.faults.harness import LONG_LEASE, FaultHarness
from tests.faults.services import PrivateRedis
from tests.faults.world import SPEC

REDISPATCH_AFTER = "3"


def test_redis_restart_mid_job_loses_no_job(fx: FaultHarness, private_redis: PrivateRedis) -> None:
    env = {**LONG_LEASE, "OCEC_REDISPATCH_AFTER_SECONDS": REDISPATCH_AFTER}
    api = fx.start_api(**env)
    fx.start_worker("w1", reaper=True, **env)
    running = _post(api.base, "running")
    where = fx.mid_epoch(running, 1, 0.2).where
    queued = _post(api.base, "queued-behind")  # the worker is busy and prefetches nothing
    broker = redis.Redis.from_url(private_redis.url)
    [waiting] = _message_ids(broker, fx.settings.queue)  # the second job's message, in Redis

    fx.record("redis-restart", running, where)
    fx.record("redis-restart", queued, "queued, message in Redis")
    crashed = datetime.now(UTC)
    private_redis.crash()
    assert httpx.get(f"{api.base}/readyz", timeout=10).status_code == 503  # broker down, and said so
    time.sleep(1.0)
    private_redis.start()
    assert waiting not in _message_ids(broker, fx.settings.queue), "the restart lost the message"
    fx.start_worker("w2", **env)  # a free worker: the re-sent message need not wait for the first job

    for job_id in (running, queued):
        fx.wait_state(job_id, "succeeded", "failed", timeout=180)
        assert_like_reference(fx, job_id)
        assert len(fx.attempts(job_id)) == 1, "ran once: no interruption, no second claim"
    assert httpx.get(f"{api.base}/readyz", timeout=10).status_code == 200
    resent = [e for e in fx.events(queued, "redispatched") if e.at > crashed]
    assert resent and all(e.attempt == 1 for e in resent), "the reaper sent the lost message again"
    broker.close()


def _message_ids(client: redis.Redis, queue: str) -> list[str]:
    """The task ids of the messages waiting in a queue (kombu keeps a queue as a Redis list)."""
    return [json.loads(raw)["headers"]["id"] for raw in client.lrange(queue, 0, -1)]


def _post(base: str, name: str) -> str:
    response = httpx.post(f"{base}/jobs", json={**SPEC, "name": name}, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
