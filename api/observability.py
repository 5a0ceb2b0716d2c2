"""Prometheus metrics of one app (``GET /metrics``): a registry per app, so tests and several apps in
one process never share counters.

- **API latency**: ``ocec_jobs_http_request_duration_seconds{method,route,status}``, a histogram
  observed by a pure-ASGI middleware (outermost, so middleware answers such as 413 count too).
  ``route`` is the route *template* (``/jobs/{job_id}``), ``<unmatched>`` for unknown paths, so
  label values stay few. A stream's duration is the whole stream.
- **The job store**, read at scrape time by ``JobStoreCollector`` (the database is the source of
  truth; the broker's queue is only a transport): queue length and oldest queued age, jobs by state,
  running jobs' epoch / stage / progress, epoch durations (a histogram over every recorded epoch
  row, by stage), workers' newest heartbeat (timestamp and age) and live / expired leases.
  ``ocec_jobs_database_up`` is 0 (and the store metrics absent) when the database cannot be read.
- **Disk use** of run folders (in total and per job) and uploads (``api.disk_metrics``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import Engine, case, func
from sqlmodel import Session, col, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.disk_metrics import DiskCollector
from api.route_info import SCOPE_KEY as ROUTE_INFO
from jobstore.db import read_session
from jobstore.models import EpochMetric, Job
from jobstore.states import JobState

log = logging.getLogger(__name__)

PREFIX = "ocec_jobs"
UNMATCHED = "<unmatched>"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
EPOCH_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Observability:
    """What an app holds for ``/metrics``: its registry and the request histogram."""

    def __init__(self, engine_of: Callable[[], Engine], disk: DiskCollector | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP requests answered by the API, by method, route template and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(JobStoreCollector(engine_of))
        if disk is not None:
            self.registry.register(disk)


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, observability: Observability) -> None:
        self.app = app
        self.histogram = observability.requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes the app is answered 500 by Starlette

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # A request the gate or the body limit answered before routing: the route it was for.
            route = getattr(scope.get("route") or scope.get(ROUTE_INFO), "path", None) or UNMATCHED
            self.histogram.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)


class JobStoreCollector:
    """Reads the job store on every scrape; a few aggregate queries in one short read session."""

    def __init__(self, engine_of: Callable[[], Engine]) -> None:
        self.engine_of = engine_of

    def describe(self) -> list[Metric]:
        return []  # families depend on the data; nothing to pre-register

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 if the job store could be read for this scrape")
        try:
            with read_session(self.engine_of()) as session:
                families = list(store_metrics(session, datetime.now(UTC)))
        except Exception:  # a scrape must answer; say the database is down instead
            log.warning("metrics: the job store could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def store_metrics(session: Session, now: datetime) -> Iterator[Metric]:
    yield from _states(session, now)
    yield from _running(session)
    yield from _leases(session, now)
    yield _epoch_histogram(session)


def _states(session: Session, now: datetime) -> Iterator[Metric]:
    counts = dict(session.exec(select(Job.state, func.count()).group_by(Job.state)).all())
    jobs = GaugeMetricFamily(f"{PREFIX}_jobs", "Jobs in each state", labels=["state"])
    for state in JobState:
        jobs.add_metric([state.value], counts.get(state.value, 0))
    yield jobs
    yield GaugeMetricFamily(
        f"{PREFIX}_queue_length",
        "Jobs waiting for a worker (state queued)",
        value=counts.get(JobState.QUEUED, 0),
    )
    oldest = session.exec(select(func.min(Job.queued_at)).where(Job.state == JobState.QUEUED)).one()
    yield GaugeMetricFamily(
        f"{PREFIX}_queue_oldest_age_seconds",
        "How long the longest-waiting queued job has waited (0 when none)",
        value=_age(now, oldest),
    )


def _running(session: Session) -> Iterator[Metric]:
    rows = session.exec(
        select(Job.id, Job.epoch, Job.epochs, Job.stage).where(Job.state == JobState.RUNNING)
    ).all()
    epoch = GaugeMetricFamily(
        f"{PREFIX}_running_job_epoch", "Last completed epoch of each running job", labels=["job_id"]
    )
    stage = GaugeMetricFamily(f"{PREFIX}_running_job_stage", "Stage of each running job", labels=["job_id"])
    progress = GaugeMetricFamily(
        f"{PREFIX}_running_job_progress_ratio",
        "Completed epochs / epoch budget of each running job",
        labels=["job_id"],
    )
    for job_id, done, budget, current in rows:
        epoch.add_metric([job_id], done)
        stage.add_metric([job_id], current)
        progress.add_metric([job_id], done / budget if budget else 0.0)
    yield from (epoch, stage, progress)
    yield GaugeMetricFamily(
        f"{PREFIX}_running_epochs",
        "Sum of the current epochs of all running jobs",
        value=sum(r[1] for r in rows),
    )


def _leases(session: Session, now: datetime) -> Iterator[Metric]:
    running = (Job.state == JobState.RUNNING, col(Job.lease_owner).is_not(None))
    beats = session.exec(
        select(Job.lease_owner, func.max(Job.heartbeat_at)).where(*running).group_by(Job.lease_owner)
    ).all()
    stamp = GaugeMetricFamily(
        f"{PREFIX}_worker_last_heartbeat_timestamp_seconds",
        "Unix time of the newest heartbeat of each worker holding a lease",
        labels=["worker"],
    )
    age = GaugeMetricFamily(
        f"{PREFIX}_worker_heartbeat_age_seconds",
        "Seconds since the newest heartbeat of each worker holding a lease",
        labels=["worker"],
    )
    for worker, beat in beats:
        if beat is not None:
            stamp.add_metric([str(worker)], _aware(beat).timestamp())
            age.add_metric([str(worker)], _age(now, beat))
    yield from (stamp, age)
    expires = session.exec(select(Job.lease_expires_at).where(*running)).all()
    live = sum(1 for when in expires if when is not None and _aware(when) > now)
    yield GaugeMetricFamily(f"{PREFIX}_live_leases", "Running jobs whose lease is current", value=live)
    yield GaugeMetricFamily(
        f"{PREFIX}_expired_leases", "Running jobs whose lease has expired (the reaper interrupts them)",
        value=len(expires) - live,
    )  # fmt: skip


def _epoch_histogram(session: Session) -> Metric:
    seconds = col(EpochMetric.epoch_seconds)
    buckets = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in EPOCH_BUCKETS]
    query = (
        select(EpochMetric.stage, func.count(), func.sum(seconds), *buckets)
        .where(seconds.is_not(None))
        .group_by(col(EpochMetric.stage))
    )
    family = HistogramMetricFamily(
        f"{PREFIX}_epoch_duration_seconds", "Training time of each recorded epoch, by stage", labels=["stage"]
    )
    for row in session.exec(query).all():
        values: tuple[Any, ...] = tuple(row)
        stage, count, total, cumulative = values[0], values[1], values[2], values[3:]
        pairs = [(str(b), float(n or 0)) for b, n in zip(EPOCH_BUCKETS, cumulative, strict=True)]
        pairs.append(("+Inf", float(count)))
        family.add_metric([str(stage)], pairs, sum_value=float(total or 0.0))
    return family


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _age(now: datetime, when: Any) -> float:
    return max(0.0, (now - _aware(when)).total_seconds()) if isinstance(when, datetime) else 0.0
