"""The app as a whole: OpenAPI, security headers, CORS, body limit, problem details for any error."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import main
from api.main import create_app
from api.settings import ApiSettings
from tests.api.conftest import Key

EXPECTED_OPERATIONS = {
    "jobs-create_job",
    "jobs-list_jobs",
    "jobs-get_job",
    "metrics-list_metrics",
    "events-list_events",
    "notifications-list_notifications",
    "stream-stream_job",
    "control-force_stage",
    "control-pause_job",
    "control-cancel_job",
    "control-resume_job",
    "control-fork_job",
    "checkpoints-list_checkpoints",
    "checkpoints-download_artifact",
    "plots-job_plot",
    "health-healthz",
    "health-readyz",
    "session-sign_in",
    "session-who_am_i",
    "session-sign_out",
    "keys-list_keys",
    "keys-create_key",
    "keys-revoke_key",
    "control-decide",
    "uploads-upload_model",
    "uploads-upload_dataset",
    "uploads-list_models",
    "uploads-list_datasets",
    "uploads-get_model",
    "uploads-get_dataset",
    "observability-prometheus_metrics",
    "jobs-delete_job",
    "uploads-delete_model",
    "uploads-delete_dataset",
    "evaluations-create_evaluation",
    "evaluations-list_evaluations",
    "evaluations-get_evaluation",
    "evaluations-worst_sheet",
    "evaluations-worst_crop",
    "evaluations-curve_png",
    "evaluations-get_job_evaluation",
    "evaluations-job_worst_sheet",
    "evaluations-job_worst_crop",
    "evaluations-job_curve_png",
    "races-get_race",
    "races-stop_race",
    "races-promote_candidate",
    "races-extend_candidate",
    "races-add_candidate",
}


def test_openapi_has_stable_operation_ids(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}

    assert operations == EXPECTED_OPERATIONS
    create = schema["paths"]["/jobs"]["post"]
    assert {"201", "200", "422"} <= set(create["responses"])
    problem = create["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert "application/json" not in create["responses"]["422"]["content"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}


def test_docs_page_is_served(client: TestClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    assert "cdn.jsdelivr.net" not in response.text  # served from this server: tests/api/routes/test_docs.py


def test_security_headers_on_json_and_a_strict_csp_on_pages(client: TestClient) -> None:
    api = client.get("/healthz")
    page = client.get("/")

    for response in (api, page):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = client.options(
        "/jobs", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    simple = client.get("/jobs", headers={"Origin": "https://evil.example"})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


def test_cors_opens_for_configured_origins(api_settings: ApiSettings) -> None:
    settings = api_settings.model_copy(update={"cors_origins": ["https://dash.example"]})

    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz", headers={"Origin": "https://dash.example"})

    assert response.headers["access-control-allow-origin"] == "https://dash.example"


def test_request_bodies_over_the_limit_are_413_problems(
    api_settings: ApiSettings, job_body: dict[str, Any], operator_key: Key
) -> None:
    settings = api_settings.model_copy(update={"max_body_bytes": 1024})

    with TestClient(create_app(settings), headers=operator_key.headers) as client:
        response = client.post("/jobs", json={**job_body, "name": "x" * 2000})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_chunked_bodies_over_the_limit_are_413_problems(api_settings: ApiSettings, operator_key: Key) -> None:
    settings = api_settings.model_copy(update={"max_body_bytes": 1024})
    chunks = iter([b'{"name": "', b"x" * 800, b"y" * 800, b'"}'])  # no Content-Length: sent chunked

    with TestClient(create_app(settings), headers=operator_key.headers) as client:
        response = client.post("/jobs", content=chunks, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    missing = client.get("/nothing/here")
    wrong_method = client.delete("/jobs")

    assert (missing.status_code, missing.json()["type"]) == (404, "urn:ocec-jobs:problem:not-found")
    assert (wrong_method.status_code, wrong_method.json()["status"]) == (405, 405)
    assert wrong_method.headers["content-type"] == "application/problem+json"


def test_only_a_served_app_freezes_its_start_up_heap(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    with TestClient(app):
        assert gc.get_freeze_count() == 0  # an in-process app: the heap is not the app's alone
    monkeypatch.setattr(main, "create_app", lambda: app)
    served = main.create_served_app()  # what `ocec-jobs api` serves
    try:
        with TestClient(served):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
