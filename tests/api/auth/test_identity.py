"""What a key is recorded as: the actor on events and commands, the owner of jobs (idempotency keys
are per key; the per-key quota is in tests/api/test_limits.py), and a throttled last_used_at."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import ApiSettings
from jobstore.db import read_session
from jobstore.models import ApiKey, Job
from tests.api.conftest import Key, KeyMaker


def test_the_actor_is_the_key_name_and_id_and_the_owner_is_the_key(
    client: TestClient, engine: Engine, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    alice = make_key("alice")

    job = client.post("/jobs", json=job_body, headers={**alice.headers, "X-Actor": "mallory"}).json()
    client.post(f"/jobs/{job['id']}/cancel", json={"reason": "oops"}, headers=alice.headers)

    events = client.get(f"/jobs/{job['id']}/events").json()["data"]
    assert {e["actor"] for e in events} == {f"alice (key {alice.id[:8]})"}  # X-Actor is ignored
    with read_session(engine) as session:
        stored = session.get(Job, job["id"])
        assert stored is not None and stored.owner == alice.id


def test_idempotency_keys_are_per_api_key(
    client: TestClient, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    alice, bob = make_key("alice"), make_key("bob")
    headers = {"Idempotency-Key": "same"}

    first = client.post("/jobs", json=job_body, headers={**alice.headers, **headers})
    replay = client.post("/jobs", json=job_body, headers={**alice.headers, **headers})
    other = client.post("/jobs", json=job_body, headers={**bob.headers, **headers})

    assert (first.status_code, replay.status_code, other.status_code) == (201, 200, 201)
    assert replay.json()["id"] == first.json()["id"] != other.json()["id"]


def last_used(engine: Engine, key: Key) -> Any:
    with read_session(engine) as session:
        record = session.get(ApiKey, key.id)
        assert record is not None
        return record.last_used_at


def test_last_used_at_is_written_once_per_interval_not_per_request(
    client: TestClient, engine: Engine, make_key: KeyMaker
) -> None:
    key = make_key("reader")
    assert last_used(engine, key) is None

    client.get("/jobs", headers=key.headers)
    first = last_used(engine, key)
    for _ in range(3):
        client.get("/jobs", headers=key.headers)

    assert first is not None
    assert last_used(engine, key) == first  # within OCEC_KEY_TOUCH_SECONDS: no further write


def test_last_used_at_follows_every_use_when_the_interval_is_zero(
    api_settings: ApiSettings, engine: Engine, make_key: KeyMaker
) -> None:
    key = make_key("reader")
    settings = api_settings.model_copy(update={"key_touch_seconds": 0.0})

    with TestClient(create_app(settings), headers=key.headers) as client:
        client.get("/jobs")
        first = last_used(engine, key)
        client.get("/jobs")

    assert first is not None and last_used(engine, key) > first
