"""Wiring only: ``create_app(settings)`` for tests and ``uvicorn api.main:app`` (or the factory)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api import errors, security
from api.lifespan import lifespan
from api.routes import checkpoints, control, dashboard, events, health, jobs, metrics, stream
from api.settings import api_settings
from jobstore.settings import Settings

VERSION = "0.1.0"


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
    )
    app.state.settings = resolved
    errors.install(app)
    errors.document_problems(app)
    security.install(app, resolved.cors_origins, resolved.max_body_bytes)
    for module in (jobs, metrics, events, stream, control, checkpoints, health, dashboard):
        app.include_router(module.router)
    return app


app = create_app()
