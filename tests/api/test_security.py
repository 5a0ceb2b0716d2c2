"""Response hardening on every kind of answer: security headers, CSP, no-store, closed CORS; and
user-controlled text only ever comes back as JSON (never as a page a browser would render)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.main import create_app
from api.settings import ApiSettings
from tests.api.conftest import Key

SCRIPT = "<script>alert(1)</script>"
BASE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


JSON = {"Content-Type": "application/json"}


def answers(client: TestClient, anonymous: TestClient, job_body: dict[str, Any]) -> dict[str, Response]:
    job = client.post("/jobs", json=job_body).json()
    client.post(f"/jobs/{job['id']}/cancel")
    return {
        "json": client.get(f"/jobs/{job['id']}"),
        "created": client.post("/jobs", json=job_body),
        "401": anonymous.get("/jobs"),
        "404": client.get("/nothing"),
        "405": client.delete("/jobs"),
        "422 strict json": client.post(
            "/jobs", content=b'{"lr": NaN}', headers={"Content-Type": "application/json"}
        ),
        "422": client.get("/jobs", params={"limit": 0}),
        "413": client.post("/jobs", content=b"x" * (2 << 20), headers=JSON),
        "stream": client.get(f"/jobs/{job['id']}/stream"),
        "health": anonymous.get("/healthz"),
        "page": anonymous.get("/"),
        "docs": anonymous.get("/docs"),
    }


def test_every_answer_carries_the_security_headers(
    client: TestClient, anonymous: TestClient, job_body: dict[str, Any]
) -> None:
    for name, response in answers(client, anonymous, job_body).items():
        for header, value in BASE.items():
            assert response.headers.get(header) == value, (name, header)
        assert "content-security-policy" in response.headers, name


def test_pages_get_a_strict_csp_and_data_gets_none_at_all(
    client: TestClient, anonymous: TestClient, job_body: dict[str, Any]
) -> None:
    seen = answers(client, anonymous, job_body)

    page = seen["page"].headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in page.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe-inline" not in page and "unsafe-eval" not in page
    for name in ("json", "401", "404", "422", "413", "stream"):
        assert seen[name].headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    docs_csp = seen["docs"].headers["content-security-policy"]  # the page CSP plus one script hash
    docs = dict(d.strip().split(" ", 1) for d in docs_csp.split(";"))
    assert docs["script-src"].startswith("'self' 'sha256-") and "unsafe-inline" not in docs["script-src"]


def test_answers_with_job_data_or_credentials_are_not_stored(
    client: TestClient, anonymous: TestClient, job_body: dict[str, Any], operator_key: Key
) -> None:
    seen = answers(client, anonymous, job_body)
    signed_in = anonymous.post("/session", json={"key": operator_key.secret})

    for name in ("json", "created", "401", "422", "health"):
        assert seen[name].headers["cache-control"] == "no-store", name
    assert signed_in.headers["cache-control"] == "no-store"
    assert seen["stream"].headers["cache-control"] in ("no-store", "no-cache")


def test_user_text_comes_back_only_as_json(client: TestClient, job_body: dict[str, Any]) -> None:
    job = client.post("/jobs", json={**job_body, "name": SCRIPT}).json()
    cancelled = client.post(f"/jobs/{job['id']}/cancel", json={"reason": SCRIPT})
    missing = client.get(f"/jobs/{SCRIPT}")
    bad_name = client.post("/jobs", json={**job_body, "data_root": SCRIPT})

    for response in (client.get(f"/jobs/{job['id']}"), client.get("/jobs"), cancelled, missing, bad_name):
        content_type = response.headers["content-type"]
        assert content_type.startswith(("application/json", "application/problem+json")), content_type
        assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/jobs/{job['id']}").json()["name"] == SCRIPT  # stored as given, escaped by JSON
    assert SCRIPT not in client.get("/").text  # the page shell carries no job data


def test_cors_is_closed_to_every_origin_by_default(client: TestClient) -> None:
    for origin in ("https://evil.example", "null", "http://testserver.evil.example"):
        preflight = client.options(
            "/jobs",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        simple = client.get("/jobs", headers={"Origin": origin})
        for response in (preflight, simple):
            assert "access-control-allow-origin" not in response.headers, origin
            assert "access-control-allow-credentials" not in response.headers


def test_configured_origins_get_cors_others_do_not(api_settings: ApiSettings, operator_key: Key) -> None:
    settings = api_settings.model_copy(update={"cors_origins": ["https://dash.example"]})

    with TestClient(create_app(settings), headers=operator_key.headers) as client:
        allowed = client.options(
            "/jobs",
            headers={
                "Origin": "https://dash.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,x-csrf-token",
            },
        )
        other = client.get("/jobs", headers={"Origin": "https://evil.example"})

    assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
    assert "access-control-allow-credentials" not in allowed.headers  # cookies never go cross-origin
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_hsts_only_over_https(client: TestClient, scheme: str) -> None:
    response = TestClient(client.app, base_url=f"{scheme}://testserver").get("/healthz")

    assert ("strict-transport-security" in response.headers) is (scheme == "https")
