"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DispatcherDep, SettingsDep
from api.errors import PROBLEM_JSON, ProblemType
from api.schemas import HealthStatus
from jobstore.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])

OK = "ok"


@router.get("/healthz", response_model=HealthStatus)
def healthz() -> HealthStatus:
    """Answer while the process is up."""
    return HealthStatus(status=OK)


@router.get(
    "/readyz",
    response_model=HealthStatus,
    responses={503: {"description": "database or broker not ready", "content": {PROBLEM_JSON: {}}}},
)
def readyz(settings: SettingsDep, dispatcher: DispatcherDep) -> HealthStatus | JSONResponse:
    """Answer 200 when the database is reachable and at the head revision and the broker is reachable."""
    checks = {"database": _database(settings.database_url), "broker": _broker(dispatcher)}
    if all(value == OK for value in checks.values()):
        return HealthStatus(status=OK, checks=checks)
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
