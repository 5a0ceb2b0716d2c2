"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DispatcherDep, EngineDep, SettingsDep
from api.errors import PROBLEM_JSON, ProblemType
from api.schemas import HealthStatus
from jobstore.db import read_session
from jobstore.migrate import current_revision, head_revision
from jobstore.repo.workers import OK, presence

router = APIRouter(tags=["health"])

DEGRADED = "degraded"  # serving, and jobs are accepted, but no worker lives to run them


@router.get("/healthz", response_model=HealthStatus)
def healthz() -> HealthStatus:
    """Answer while the process is up."""
    return HealthStatus(status=OK)


@router.get(
    "/readyz",
    response_model=HealthStatus,
    responses={503: {"description": "database or broker not ready", "content": {PROBLEM_JSON: {}}}},
)
def readyz(
    settings: SettingsDep, dispatcher: DispatcherDep, engine: EngineDep
) -> HealthStatus | JSONResponse:
    """Answer 200 when the database is reachable and at the head revision and the broker is reachable.

    ``checks.workers`` says whether a worker lives (its presence beat within ``lease_seconds``), or
    why none does; without one the answer is still 200 (jobs are accepted and wait) with status
    ``degraded``.
    """
    checks = {"database": _database(settings.database_url), "broker": _broker(dispatcher)}
    if all(value == OK for value in checks.values()):
        checks["workers"] = _workers(engine, settings.lease_seconds)
        return HealthStatus(status=OK if checks["workers"] == OK else DEGRADED, checks=checks)
    problem = {
        "type": ProblemType.UNAVAILABLE,
        "title": "Service Unavailable",
        "status": 503,
        "detail": "; ".join(f"{name}: {value}" for name, value in checks.items() if value != OK),
        "instance": "/readyz",
        "checks": checks,
    }
    return JSONResponse(problem, status_code=503, media_type=PROBLEM_JSON)


def _database(url: str) -> str:
    try:
        current = current_revision(url)
    except Exception as exc:  # any driver error means "not ready"; the message says which
        return f"unreachable ({type(exc).__name__}: {exc})"[:300]
    head = head_revision()
    return OK if current == head else f"schema at revision {current} but head is {head}"


def _broker(dispatcher: DispatcherDep) -> str:
    try:
        dispatcher.ping()
    except Exception as exc:
        return f"unreachable ({type(exc).__name__}: {exc})"[:300]
    return OK


def _workers(engine: EngineDep, fresh_seconds: float) -> str:
    try:
        with read_session(engine) as session:
            return presence(session, fresh_seconds=fresh_seconds).check()
    except Exception as exc:
        return f"unknown ({type(exc).__name__}: {exc})"[:300]
