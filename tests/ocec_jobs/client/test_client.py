"""``ocec_jobs.client.Client`` against a real API and a real worker (the fake engine): pages, waits,
the event stream, downloads and the problem details of its errors. (The CLI runs on the same client:
test_commands.py covers uploads and a stream cut mid-job.)"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from ocec_jobs.client import ApiError, Client, JobEndedError, UnreachableError, WaitTimeoutError
from tests.ocec_jobs.client.conftest import Stack
from tests.ocec_jobs.up_process import free_port


@pytest.fixture
def client(stack: Stack) -> Client:
    return Client(stack.url, stack.operator, timeout=30)


def test_submit_wait_then_read_it_page_by_page_and_as_a_stream(
    stack: Stack, client: Client, tmp_path: Path
) -> None:
    data = stack.dataset("pages", f1=[0.7, 0.8, 0.9], epoch_seconds=0.05)
    key, name = uuid.uuid4().hex, f"lib-{uuid.uuid4().hex[:6]}"
    first = client.create_job({"name": name, "data_root": data, "epochs": 3}, idempotency_key=key)
    again = client.create_job({"name": name, "data_root": data, "epochs": 3}, idempotency_key=key)
    other = client.create_job({"name": name, "data_root": data, "epochs": 1})

    done = client.wait(first["id"], timeout=60)
    client.wait(other["id"], "succeeded", timeout=60)

    assert again["id"] == first["id"] and done["state"] == "succeeded"
    assert {job["id"] for job in client.iter_jobs(name=name, limit=1)} == {first["id"], other["id"]}
    assert [row["epoch"] for row in client.iter_metrics(first["id"], limit=1)] == [1, 2, 3]
    events = list(client.iter_events(first["id"], limit=2))
    assert events == client.list_events(first["id"], limit=500)["data"] and len(events) > 2
    stream = list(client.stream(first["id"]))
    ids = [int(m.id) for m in stream if m.id]
    assert stream[-1].event == "end" and stream[-1].json()["state"] == "succeeded"
    assert ids == sorted(set(ids)) and [m.json()["epoch"] for m in stream if m.event == "metric"] == [1, 2, 3]
    resumed = list(client.stream(first["id"], after=str(ids[1])))
    assert [int(m.id) for m in resumed if m.id] == ids[2:]  # Last-Event-ID: nothing before it again
    saved = client.download(first["id"], "best.pt", tmp_path / "best.pt")
    assert saved.sha256 == hashlib.sha256((tmp_path / "best.pt").read_bytes()).hexdigest() and saved.bytes > 0


def test_wait_for_a_person_then_for_a_state_the_job_can_no_longer_reach(stack: Stack, client: Client) -> None:
    data = stack.dataset("waits", f1=[0.5], epoch_seconds=0.05)
    spec = {"data_root": data, "epochs": 4, "unfreeze_backbone_epoch": 2, "stage2": {"on_gate_fail": "pause"}}
    job = client.create_job(spec)

    waiting = client.wait(job["id"], "awaiting_decision", timeout=60)
    with pytest.raises(WaitTimeoutError) as timed_out:
        client.wait(job["id"], "running", timeout=0.2, poll_seconds=0.1)
    client.decide(job["id"], "stop", "enough for a test")
    ended = client.wait(job["id"], timeout=60)
    with pytest.raises(JobEndedError) as unreachable:
        client.wait(job["id"], "paused")

    assert waiting["pending_decision"] and timed_out.value.job["state"] == "awaiting_decision"
    assert ended["state"] == "succeeded" and unreachable.value.job["state"] == "succeeded"

    gone = client.delete_job(job["id"], reason="a test's job")  # finished: its files go, a tombstone stays
    listed = {j["id"] for j in client.iter_jobs(include_deleted=True)}
    shown = {j["id"] for j in client.iter_jobs()}
    assert gone["deleted_at"] and job["id"] in listed and job["id"] not in shown


def test_errors_carry_the_problem_details(stack: Stack, client: Client) -> None:
    with pytest.raises(ApiError) as missing:
        client.get_job("no-such-job")
    with pytest.raises(ApiError) as invalid:
        client.create_job({"data_root": stack.dataset("bad", f1=[0.9]), "lr": 5})
    with pytest.raises(ApiError) as viewer:
        Client(stack.url, stack.viewer).cancel("no-such-job")
    with pytest.raises(UnreachableError) as down:
        Client(f"http://127.0.0.1:{free_port()}", stack.operator).healthz()

    assert (missing.value.status, missing.value.title) == (404, "Job not found")
    assert "no-such-job" in missing.value.detail
    assert invalid.value.status == 422 and [e["field"] for e in invalid.value.errors] == ["lr"]
    assert "lr" in str(invalid.value)
    assert viewer.value.status == 403 and viewer.value.body["status"] == 403
    assert "connection refused" in str(down.value)
