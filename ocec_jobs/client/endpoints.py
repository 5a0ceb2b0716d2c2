"""Which API route each ``Client`` method calls: ``@endpoint("POST /jobs/{job_id}/stage")``.

``tests/ocec_jobs/client/test_endpoints.py`` compares these with the routes of the app and names any
route without a method (or a method whose route is gone). A new route gets a method like::

    @endpoint("DELETE /jobs/{job_id}")
    def delete_job(self, job_id: str) -> Json:
        return self.call("DELETE /jobs/{job_id}", job_id=job_id)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
ROUTES_ATTRIBUTE = "__ocec_routes__"


def endpoint(*routes: str) -> Callable[[F], F]:
    """Mark a method as the client of ``routes``: ``"METHOD /path/{param}"`` as ``/openapi.json`` has them."""

    def mark(method: F) -> F:
        setattr(method, ROUTES_ATTRIBUTE, routes)
        return method

    return mark


def endpoints_of(cls: type) -> dict[str, str]:
    """``"METHOD /path"`` -> the name of the method of ``cls`` that calls it."""
    found: dict[str, str] = {}
    for name in dir(cls):
        for route in getattr(getattr(cls, name), ROUTES_ATTRIBUTE, ()):
            found[route] = name
    return found
