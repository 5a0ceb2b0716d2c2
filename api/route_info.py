"""What the middleware must know of a request's route before anything reads its body: whether the
route needs a key (``api.auth.gate`` answers 401 first) and whether it takes a JSON body (and so
which body cap applies: ``api.limits``). FastAPI itself reads and parses the body before it solves
any dependency, the auth one included, hence a look-up of our own in front of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import Scope

from api.auth import get_actor

SCOPE_KEY = "ocec.route"


@dataclass(frozen=True)
class RouteInfo:
    path: str  # the route's template: "/jobs/{job_id}/stage"
    needs_key: bool  # depends on get_actor (router dependency, ActorDep or require(...))
    takes_json: bool  # declares a body model (the upload routes stream theirs and declare none)


def route_info(scope: Scope) -> RouteInfo | None:
    """The API route that will answer this request; ``None`` for a 404, 405 or a static file."""
    if SCOPE_KEY not in scope:
        scope[SCOPE_KEY] = next(
            (info for route, info in _table(scope["app"]) if route.matches(scope)[0] is Match.FULL), None
        )
    found: RouteInfo | None = scope[SCOPE_KEY]
    return found


def _table(app: Any) -> list[tuple[Any, RouteInfo | None]]:
    """Every route with what we know of it, built once per app (routes do not change after start)."""
    table: list[tuple[Any, RouteInfo | None]] | None = getattr(app.state, "route_info", None)
    if table is None:
        table = [(route, _info(route)) for route in iter_route_contexts(app.routes)]
        app.state.route_info = table
    return table


def _info(route: Any) -> RouteInfo | None:
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return None
    return RouteInfo(
        path=route.path,
        needs_key=_calls(dependant, get_actor),
        takes_json=getattr(route, "body_field", None) is not None,
    )


def _calls(dependant: Dependant, target: object) -> bool:
    return dependant.call is target or any(_calls(d, target) for d in dependant.dependencies)
