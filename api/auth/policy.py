"""Which operations are open without a key, and a start-up check that every other one asks for one.

An operation that depends on ``get_actor`` (``ActorDep``, ``require(...)``, or the router-level
dependency of ``api.main``) carries an OpenAPI ``security`` requirement. ``create_app`` refuses to
build an app with an operation that has none and is not listed here, so a new route cannot be left
open by accident. (Routes hidden from the schema — the dashboard's HTML page shells — hold no data.)
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

# Probes, sign-in and sign-out: (method, path template).
PUBLIC_OPERATIONS = frozenset(
    {("get", "/healthz"), ("get", "/readyz"), ("post", "/session"), ("delete", "/session")}
)


def unprotected_operations(schema: dict[str, Any]) -> list[str]:
    found = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not operation.get("security") and (method, path) not in PUBLIC_OPERATIONS:
                found.append(f"{method.upper()} {path}")
    return found


def check_routes(app: FastAPI) -> None:
    """Raise if an operation neither asks who is acting nor is meant to be open."""
    routes = route_table(app)
    if routes in _CHECKED:
        return
    open_operations = unprotected_operations(app.openapi())
    if open_operations:
        raise RuntimeError(
            f"operations without auth: {', '.join(open_operations)}: include their router with the "
            "auth dependency (api.main.PROTECTED) or use ActorDep / require(...)"
        )
    _CHECKED.add(routes)


# Building the OpenAPI schema takes ~0.3 s; the answer depends only on the routes (their endpoints
# carry their own dependencies), so every app built from the same routes is checked once.
_CHECKED: set[tuple[Hashable, ...]] = set()


def route_table(app: FastAPI) -> tuple[Hashable, ...]:
    """Every API route as included (FastAPI keeps an included router as one entry of ``app.routes``;
    ``iter_route_contexts`` yields its routes with the router-level dependencies)."""
    return tuple(
        (route.path, frozenset(route.methods or ()), route.endpoint, _dependencies(route))
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
    )


def _dependencies(route: Any) -> tuple[Hashable, ...]:
    return tuple(depends.dependency for depends in route.dependencies)
