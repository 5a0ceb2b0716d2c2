"""GET /jobs/{id}/stream over a real uvicorn server: replay with Last-Event-ID and the final end event."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine

from api.main import create_app
from api.settings import ApiSettings
from api.sse import END_EVENT, REVOKED_COMMENT
from jobstore.repo.keys import Role
from jobstore.states import AttemptOutcome
from tests.api.conftest import KeyMaker
from tests.api.sse_client import messages, read_until
from tests.api.worker_sim import SimWorker
from tests.live_api import serve_app

TIMEOUT = httpx.Timeout(10.0)


def _submit(http: httpx.Client, body: dict[str, Any]) -> str:
    response = http.post("/jobs", json=body)
    assert response.status_code == 201
    return str(response.json()["id"])


def test_stream_replays_after_last_event_id_and_ends_with_the_terminal_state(
    http: httpx.Client, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = _submit(http, job_body)
    worker = SimWorker(engine, job_id)
    worker.claim()
    worker.epoch(1)
    url = f"/jobs/{job_id}/stream"

    with http.stream("GET", url, timeout=TIMEOUT) as first:
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/event-stream")
        seen = read_until(messages(first), "metric")
    kinds = [m.event for m in seen if m.id is not None]
    assert kinds == ["created", "state_change", "metric"]
    assert seen[-1].json()["epoch"] == 1
    last_id = seen[-1].id
    assert last_id is not None

    worker.epoch(2)
    worker.gate(epoch=2, f1=0.82)
    worker.stage(2, epoch=3)
    worker.epoch(3, stage=2, val_f1=0.83)
    worker.finish(AttemptOutcome.COMPLETED, reason="epoch budget reached")

    with http.stream("GET", url, headers={"Last-Event-ID": last_id}, timeout=TIMEOUT) as second:
        stream = messages(second)
        replay = read_until(stream, END_EVENT)
        assert next(stream, None) is None, "the stream closes after the end event"

    events = [m for m in replay if m.id is not None]
    ids = [int(m.id) for m in events if m.id is not None]
    assert ids == sorted(ids) and ids[0] == int(last_id) + 1, "nothing before Last-Event-ID is sent again"
    assert [m.event for m in events] == ["metric", "gate_check", "stage_change", "metric", "state_change"]
    assert events[2].json()["to_stage"] == 2
    assert events[3].json()["stage"] == 2
    end = replay[-1]
    assert end.event == END_EVENT
    assert end.json()["state"] == "succeeded"
    assert end.json()["last_event_id"] == events[-1].id


def test_stream_of_a_finished_job_replays_everything_then_ends(
    http: httpx.Client, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = _submit(http, job_body)
    http.post(f"/jobs/{job_id}/cancel", json={"reason": "changed my mind"})

    with http.stream("GET", f"/jobs/{job_id}/stream", timeout=TIMEOUT) as response:
        seen = list(messages(response))

    assert [m.event for m in seen if m.id is not None] == ["created", "state_change"]
    assert seen[-1].event == END_EVENT
    assert seen[-1].json()["state"] == "cancelled"


def test_stream_sends_keep_alive_comments_while_nothing_happens(
    http: httpx.Client, job_body: dict[str, Any]
) -> None:
    job_id = _submit(http, job_body)

    with http.stream("GET", f"/jobs/{job_id}/stream", params={"after": 2}, timeout=TIMEOUT) as response:
        for message in messages(response):
            if "keep-alive" in message.comments:
                break
            assert message.id is None, "nothing after event 2 exists yet"


def test_stream_query_after_resumes_like_the_header(http: httpx.Client, job_body: dict[str, Any]) -> None:
    job_id = _submit(http, job_body)
    http.post(f"/jobs/{job_id}/cancel", json={})

    with http.stream("GET", f"/jobs/{job_id}/stream?after=1", timeout=TIMEOUT) as response:
        seen = list(messages(response))

    assert [m.id for m in seen if m.id is not None] == ["2"]


def test_stream_of_an_unknown_job_is_a_404_problem(http: httpx.Client) -> None:
    response = http.get("/jobs/0123456789abcdef0123456789abcdef/stream", timeout=TIMEOUT)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_bad_last_event_id_is_a_422_problem(http: httpx.Client, job_body: dict[str, Any]) -> None:
    job_id = _submit(http, job_body)

    response = http.get(f"/jobs/{job_id}/stream", headers={"Last-Event-ID": "yesterday"}, timeout=TIMEOUT)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Last-Event-ID"


def test_a_stream_closes_soon_after_its_key_is_revoked_or_its_session_signed_out(
    api_settings: ApiSettings, make_key: KeyMaker, job_body: dict[str, Any]
) -> None:
    """The job stays queued (its stream would never end by itself); keep-alives are rarer than the
    client's read timeout, so a stream left open fails the test instead of hanging it."""
    settings = api_settings.model_copy(
        update={"stream_auth_recheck_seconds": 0.2, "stream_keepalive_seconds": 60}
    )
    admin, viewer = make_key("root", Role.ADMIN), make_key("watcher", Role.VIEWER)
    with (
        serve_app(create_app(settings), grace_seconds=2) as base,
        httpx.Client(base_url=base, timeout=TIMEOUT) as http,
    ):
        url = f"/jobs/{http.post('/jobs', json=job_body, headers=admin.headers).json()['id']}/stream"

        with http.stream("GET", url, headers=viewer.headers) as by_key:
            stream = messages(by_key)
            assert read_until(stream, "created")[-1].event == "created"
            assert http.delete(f"/keys/{viewer.id}", headers=admin.headers).status_code == 200
            after_revocation = list(stream)

        http.post("/session", json={"key": admin.secret})
        with http.stream("GET", url) as by_cookie:
            stream = messages(by_cookie)
            assert read_until(stream, "created")[-1].event == "created"
            kept = dict(http.cookies)
            assert http.delete("/session").status_code == 204
            after_sign_out = list(stream)
        reconnect = httpx.get(f"{base}{url}", cookies=kept)

    for rest in (after_revocation, after_sign_out):
        assert rest and all(m.event != END_EVENT for m in rest)
        assert REVOKED_COMMENT in rest[-1].comments
    assert reconnect.status_code == 401
