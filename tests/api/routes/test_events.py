"""GET /jobs/{id}/events: the audit trail in order, paged by seq, filtered by kind."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import KeyMaker
from tests.api.worker_sim import SimWorker


def test_events_list_the_audit_trail_in_order(
    client: TestClient, engine: Engine, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    erin = make_key("erin")
    job_id = client.post("/jobs", json=job_body, headers=erin.headers).json()["id"]
    worker = SimWorker(engine, job_id)
    worker.claim()
    worker.epoch(1)
    client.post(f"/jobs/{job_id}/stage", json={"stage": 2, "reason": "by hand"}, headers=erin.headers)

    events = client.get(f"/jobs/{job_id}/events").json()

    assert [e["seq"] for e in events["data"]] == [1, 2, 3, 4]
    assert [e["kind"] for e in events["data"]] == ["created", "state_change", "epoch", "command_requested"]
    assert events["next_after"] is None
    command = events["data"][-1]
    assert (command["actor"], command["reason"], command["evidence"]["params"]) == (
        erin.actor,
        "by hand",
        {"stage": 2},
    )


def test_events_page_by_seq_and_filter_by_kind(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]
    worker = SimWorker(engine, job_id)
    worker.claim()
    for epoch in (1, 2, 3):
        worker.epoch(epoch)

    page = client.get(f"/jobs/{job_id}/events", params={"limit": 2}).json()
    after = client.get(f"/jobs/{job_id}/events", params={"after": page["next_after"]}).json()
    epochs = client.get(f"/jobs/{job_id}/events", params={"kind": "epoch"}).json()

    assert [e["seq"] for e in page["data"]] == [1, 2]
    assert page["next_after"] == 2
    assert [e["seq"] for e in after["data"]] == [3, 4, 5]
    assert [e["epoch"] for e in epochs["data"]] == [1, 2, 3]


def test_events_reject_an_unknown_kind(client: TestClient, job_body: dict[str, Any]) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]

    response = client.get(f"/jobs/{job_id}/events", params={"kind": "party"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "kind"


def test_events_of_an_unknown_job_is_404(client: TestClient) -> None:
    assert client.get("/jobs/0123456789abcdef0123456789abcdef/events").status_code == 404
