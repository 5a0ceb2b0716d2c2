"""Wiring only: ``create_app(settings)`` for tests and ``uvicorn api.main:app`` (or the factory)."""

from __future__ import annotations

import logging
import multiprocessing
import signal
from functools import partial

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from api import errors, observability, security
from api.auth import get_actor
from api.auth.gate import AuthGateMiddleware
from api.auth.policy import check_routes
from api.disk_metrics import DiskCollector
from api.head import HeadAsGetMiddleware
from api.lifespan import lifespan
from api.limits import StrictJsonMiddleware, body_limit
from api.routes import (
    checkpoints,
    control,
    dashboard,
    docs,
    evaluations,
    events,
    health,
    job_evaluation,
    jobs,
    keys,
    metrics,
    notifications,
    plots,
    prometheus,
    races,
    session,
    stream,
    uploads,
)
from api.settings import api_settings
from api.uploads import service as upload_service
from jobstore.parent_death import die_with_parent
from jobstore.settings import Settings
from jobstore.text import escape_log_records

VERSION = "0.1.0"
log = logging.getLogger(__name__)
AUTH_OFF_WARNING = (
    "AUTH IS OFF (OCEC_AUTH=off): anyone who can reach this server can submit, steer and cancel "
    "jobs and download models. Only run it like this on a machine nobody else can reach."
)
# Every route of these routers needs a key (viewer to read, operator to write: api.auth.identity).
PROTECTED = (
    jobs,
    metrics,
    events,
    stream,
    control,
    checkpoints,
    plots,
    uploads,
    prometheus,
    notifications,
    evaluations,
    job_evaluation,
    races,
)
# Open, or protected route by route: probes, the dashboard's page shells (their data calls are
# protected), sign-in/out, key management (admin on each route), the API reference (/docs: Swagger UI
# served from this server, not a CDN). ``check_routes`` verifies it.
OPEN = (health, dashboard, session, keys, docs)


def operation_id(route: APIRoute) -> str:
    """Stable OpenAPI operation ids (``jobs-create_job``) so generated clients do not churn."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    resolved = api_settings(settings)
    app = FastAPI(
        title="ocec-jobs",
        version=VERSION,
        description="Two-stage progressive fine-tuning jobs for OCEC. Errors are RFC 9457 problem details.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # api.routes.docs serves /docs without a CDN
        redoc_url=None,
    )
    app.state.settings = resolved
    escape_log_records()  # names and paths in log lines show escapes, not raw control characters
    if not resolved.auth_enabled:
        log.warning(AUTH_OFF_WARNING)
    errors.install(app)
    errors.document_problems(app)
    # Innermost first: HEAD on a read answers as its GET without the body. Nothing reads a body
    # before the gate has authenticated the request; the NaN guard reads bodies the limit bounds
    # (per route: api.limits.body_limit).
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(StrictJsonMiddleware)
    upload_limits = upload_service.body_limits(resolved)
    limit_of = partial(body_limit, max_json=resolved.max_body_bytes, uploads=upload_limits)
    app.add_middleware(security.BodyLimitMiddleware, limit_of=limit_of)
    app.add_middleware(AuthGateMiddleware)
    security.install(app, resolved.cors_origins)
    disk = DiskCollector(resolved.runs_root, resolved.model_root, resolved.data_root)
    app.state.observability = observability.Observability(lambda: app.state.resources.engine, disk)
    # outermost: every answer is timed, the middleware's own 413s included
    app.add_middleware(observability.RequestMetricsMiddleware, observability=app.state.observability)
    auth = [Depends(get_actor)]
    for module in PROTECTED:
        app.include_router(module.router, dependencies=auth, responses=errors.problems(401, 403, 429))
    for module in OPEN:
        app.include_router(module.router)
    dashboard.mount_static(app)
    check_routes(app)
    return app


def create_served_app() -> FastAPI:
    """The factory ``ocec-jobs api`` serves: ``create_app()``, and in each of uvicorn's worker
    processes (``--workers N``: multiprocessing children) death with the uvicorn supervisor."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        die_with_parent(signal.SIGTERM, parent.pid)
    served = create_app()
    served.state.freeze_heap = True  # its lifespan moves the start-up heap out of the collector's way
    return served


app = create_app()
