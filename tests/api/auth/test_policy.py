"""The start-up check that no operation is left open by accident, and its per-route-table memo."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from api.auth.policy import _CHECKED, check_routes, route_table
from api.main import create_app
from api.routes import jobs
from api.settings import ApiSettings

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no database work here


def test_a_route_added_without_auth_is_refused_even_after_the_same_app_passed(
    api_settings: ApiSettings,
) -> None:
    app = create_app(api_settings)
    assert route_table(app) in _CHECKED  # the stock routes passed

    @app.get("/leak")
    def leak() -> dict[str, str]:
        return {"secret": "out"}

    app.openapi_schema = None  # FastAPI caches the schema of the first check
    with pytest.raises(RuntimeError, match="operations without auth: GET /leak"):
        check_routes(app)
    assert route_table(app) not in _CHECKED


def test_apps_built_from_the_same_routes_share_one_check(api_settings: ApiSettings) -> None:
    first, second = create_app(api_settings), create_app(api_settings)

    assert route_table(first) == route_table(second)
    assert isinstance(second, FastAPI) and second.openapi_schema is None  # no schema built again


def test_a_router_included_without_auth_is_refused_after_the_stock_app_passed(
    api_settings: ApiSettings,
) -> None:
    create_app(api_settings)  # the stock routes pass and are remembered
    app = FastAPI()
    app.include_router(jobs.router)  # without api.main's auth dependency

    with pytest.raises(RuntimeError, match="operations without auth: GET /jobs"):
        check_routes(app)
