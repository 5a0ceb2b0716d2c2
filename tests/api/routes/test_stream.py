"""GET /jobs/{id}/stream over a real uvicorn server: replay with Last-Event-ID and the final end event."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine

from api.sse import END_EVENT
from jobstore.states import AttemptOutcome
from tests.api.sse_client import messages, read_until
from tests.api.worker_sim import SimWorker

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
