"""The notifier's pass against a real HTTP receiver: signed, retried with a backoff, logged.

The pass takes its clock as an argument: each test moves it past the backoff instead of sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.models import Job, NotificationDelivery
from jobstore.notify.deliver import DeliveryReport, deliver
from jobstore.notify.signing import ID_HEADER, SIGNATURE_HEADER, TYPE_HEADER
from jobstore.settings import Settings
from jobstore.states import JobState
from tests.webhook_receiver import Receiver, documented_verify, free_port

Clock = Callable[[float], datetime]
SECRET = "job-secret-0123456789"
SERVER_SECRET = "server-secret-0123456789"


def settings_for(tmp_path: Path, db_url: str, **values: object) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, notify_backoff_seconds=10, **values)  # type: ignore[arg-type]


def cancelled_job(engine: Engine, new_job: Callable[..., Job], *urls: str) -> Job:
    job = new_job(notify={"urls": list(urls), "secret": SECRET}) if urls else new_job()
    with write_transaction(engine) as session:
        repo.transition(session, job, JobState.CANCELLED, actor="op", reason="not needed")
    return job


def log_of(engine: Engine, job_id: str) -> list[NotificationDelivery]:
    with read_session(engine) as session:
        return repo.list_deliveries(session, job_id=job_id)


def run(engine: Engine, settings: Settings, now: datetime) -> DeliveryReport:
    return deliver(engine, settings=settings, clock=lambda: now)


def test_a_receiver_that_is_down_gets_it_when_it_comes_back(
    engine: Engine, new_job: Callable[..., Job], at: Clock, tmp_path: Path, db_url: str
) -> None:
    settings = settings_for(tmp_path, db_url)
    port = free_port()  # nobody listens: the receiver is down
    job = cancelled_job(engine, new_job, f"http://127.0.0.1:{port}/hook")

    first = run(engine, settings, at(1))
    assert (first.fanned_out, first.retrying, first.delivered) == (1, 1, 0)
    [pending] = log_of(engine, job.id)
    assert (pending.status, pending.attempts, pending.last_status_code) == ("pending", 1, None)
    assert pending.last_error and pending.next_try_at == at(11)  # the backoff base: 10 s
    assert run(engine, settings, at(5)).counts() == DeliveryReport().counts()  # not due yet: nothing

    with Receiver(port) as receiver:
        assert run(engine, settings, at(11)).delivered == 1
        [done] = log_of(engine, job.id)
        assert (done.status, done.attempts, done.next_try_at, done.delivered_at) == (
            "delivered",
            2,
            None,
            at(11),
        )
        assert [(e["attempt"], e["status_code"], bool(e["error"])) for e in done.log] == [
            (1, None, True),
            (2, 200, False),
        ]
        assert done.log[1]["response"] == "ok"
        [post] = receiver.posts()
    body = json.loads(post.body)
    assert post.headers[ID_HEADER.lower()] == body["id"] == done.notification_id
    assert post.headers[TYPE_HEADER.lower()] == body["type"] == "job.finished"
    assert body["job"]["id"] == job.id and body["event"]["to_state"] == "cancelled"
    assert run(engine, settings, at(100)).counts() == DeliveryReport().counts()  # delivered once


def test_the_documented_snippet_verifies_the_signature_and_refuses_replays_and_tampering(
    engine: Engine, new_job: Callable[..., Job], at: Clock, tmp_path: Path, db_url: str
) -> None:
    verify = documented_verify()
    with Receiver() as receiver:
        cancelled_job(engine, new_job, receiver.url)
        assert run(engine, settings_for(tmp_path, db_url), at(1)).delivered == 1
        [post] = receiver.posts()
    header, sent = post.headers[SIGNATURE_HEADER.lower()], at(1).timestamp()
    assert header.startswith(f"t={int(sent)},v1=")
    assert verify(SECRET, header, post.body, now=sent + 60)
    assert not verify(SECRET, header, post.body, now=sent + 301)  # outside the 5-minute window
    assert not verify(SECRET, header, post.body + b" ", now=sent)  # the body was changed
    assert not verify("another-secret-0123", header, post.body, now=sent)
    assert not verify(SECRET, "v1=deadbeef", post.body, now=sent)


def test_server_urls_get_every_job_signed_with_the_server_secret(
    engine: Engine, new_job: Callable[..., Job], at: Clock, tmp_path: Path, db_url: str
) -> None:
    with Receiver() as receiver:
        settings = settings_for(tmp_path, db_url, notify_urls=[receiver.url], notify_secret=SERVER_SECRET)
        job = cancelled_job(engine, new_job)  # no notify of its own
        assert run(engine, settings, at(1)).delivered == 1
        [post] = receiver.posts()
    assert documented_verify()(
        SERVER_SECRET, post.headers[SIGNATURE_HEADER.lower()], post.body, now=at(1).timestamp()
    )
    assert [(d.scope, d.status) for d in log_of(engine, job.id)] == [("server", "delivered")]


@pytest.mark.parametrize("answer", [b"x" * 10_000])
def test_it_gives_up_after_the_last_attempt_keeping_only_the_start_of_each_answer(
    engine: Engine, new_job: Callable[..., Job], at: Clock, tmp_path: Path, db_url: str, answer: bytes
) -> None:
    settings = settings_for(tmp_path, db_url, notify_max_attempts=2, notify_backoff_max_seconds=15)
    with Receiver(status=503, answer=answer) as receiver:
        job = cancelled_job(engine, new_job, receiver.url)
        assert run(engine, settings, at(1)).retrying == 1
        assert run(engine, settings, at(11)).failed == 1
        assert run(engine, settings, at(1000)).counts() == DeliveryReport().counts()
        assert len(receiver.posts()) == 2
    [failed] = log_of(engine, job.id)
    assert (failed.status, failed.attempts, failed.next_try_at, failed.last_status_code) == (
        "failed",
        2,
        None,
        503,
    )
    assert [len(entry["response"]) for entry in failed.log] == [256, 256]
