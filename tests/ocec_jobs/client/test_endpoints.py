"""Every route of the API has a ``Client`` method, and every method's route exists.

Routes come from the app's own OpenAPI schema (``create_app``), so a route added on any branch shows
up here by name until ``ocec_jobs/client/client.py`` gets a method marked ``@endpoint("METHOD /path")``.
"""

from __future__ import annotations

from pathlib import Path

from api.main import create_app
from api.settings import ApiSettings
from ocec_jobs.client import Client
from ocec_jobs.client.endpoints import endpoints_of


def api_routes(tmp_path: Path) -> set[str]:
    """``"METHOD /path"`` of every operation of the app's OpenAPI schema (its public routes)."""
    app = create_app(ApiSettings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ocec.db'}"))
    paths = app.openapi()["paths"]
    return {f"{method.upper()} {path}" for path, operations in paths.items() for method in operations}


def test_every_route_has_a_client_method(tmp_path: Path) -> None:
    missing = sorted(api_routes(tmp_path) - set(endpoints_of(Client)))

    assert missing == [], (
        f"routes without a Client method: {missing}; add one to ocec_jobs/client/client.py, "
        'marked @endpoint("METHOD /path") (see ocec_jobs/client/endpoints.py)'
    )


def test_every_client_method_calls_a_route_that_exists(tmp_path: Path) -> None:
    known = api_routes(tmp_path)
    stale = {route: name for route, name in endpoints_of(Client).items() if route not in known}

    assert stale == {}, f"Client methods whose route the API no longer has: {stale}"
