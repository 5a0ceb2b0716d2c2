"""Every bound of the API answers a clear 4xx problem naming the field: body size, epochs, batch size,
lr range, name length, page sizes, cursors, queued jobs per key, NaN and infinities (JSON literals too)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.limits import JSON_LIMIT, MAX_JSON_VALUES, NO_BODY_LIMIT, SMALL_JSON_LIMIT
from api.main import create_app
from api.schemas import CURSOR_MAX
from api.settings import ApiSettings
from jobstore.spec import MAX_BATCH, MAX_EPOCHS
from tests.api.conftest import Key, KeyMaker

JSON = {"Content-Type": "application/json"}


def fields(response: Any) -> set[tuple[str, str]]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return {(e["field"], e["type"]) for e in response.json()["errors"]}


def post_raw(client: TestClient, path: str, text: str) -> Any:
    return client.post(path, content=text.encode(), headers=JSON)


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"epochs": 0}, "epochs", "greater_than_equal"),
        ({"epochs": MAX_EPOCHS + 1}, "epochs", "less_than_equal"),
        ({"epochs": 10**30}, "epochs", "less_than_equal"),
        ({"batch_size": 0}, "batch_size", "greater_than_equal"),
        ({"batch_size": MAX_BATCH + 1}, "batch_size", "less_than_equal"),
        ({"lr": 0}, "lr", "greater_than"),
        ({"lr": -1e-4}, "lr", "greater_than"),
        ({"lr": 1.5}, "lr", "less_than_equal"),
        ({"stage2": {"lr": 2.0}}, "stage2.lr", "less_than_equal"),
        ({"name": ""}, "name", "string_too_short"),
        ({"name": "n" * 201}, "name", "string_too_long"),
        ({"priority": 101}, "priority", "less_than_equal"),
        ({"data_root": "d" * 1025}, "data_root", "string_too_long"),
    ],
)
def test_job_bounds_are_422_naming_the_field(
    client: TestClient, job_body: dict[str, Any], change: dict[str, Any], field: str, error: str
) -> None:
    response = client.post("/jobs", json={**job_body, **change})

    assert response.status_code == 422
    assert fields(response) == {(field, error)}


def test_the_largest_allowed_values_are_accepted(client: TestClient, job_body: dict[str, Any]) -> None:
    body = {**job_body, "epochs": MAX_EPOCHS, "batch_size": MAX_BATCH, "lr": 1.0, "name": "n" * 200}

    assert client.post("/jobs", json=body).status_code == 201


@pytest.mark.parametrize(
    ("template", "literal", "field"),
    [
        ('{{"data_root": "dataset_B", "lr": {v}}}', "NaN", "lr"),
        ('{{"data_root": "dataset_B", "lr": {v}}}', "-Infinity", "lr"),
        ('{{"data_root": "dataset_B", "stage2": {{"gate_f1": {v}}}}}', "Infinity", "stage2.gate_f1"),
        ('{{"data_root": "dataset_B", "priority": {v}}}', "1e999", "priority"),
        ('{{"data_root": "dataset_B", "undeclared": [1, {v}]}}', "-1e999", "undeclared.1"),
    ],
)
def test_non_finite_json_literals_are_refused_naming_the_field(
    client: TestClient, template: str, literal: str, field: str
) -> None:
    response = post_raw(client, "/jobs", template.format(v=literal))

    assert response.status_code == 422
    assert fields(response) == {(field, "finite_number")}
    assert client.get("/jobs").json()["data"] == []


def test_non_finite_numbers_are_refused_in_control_bodies_too(
    client: TestClient, job_body: dict[str, Any]
) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]

    resume = post_raw(client, f"/jobs/{job_id}/resume", '{"lr": NaN}')
    fork = post_raw(client, f"/jobs/{job_id}/fork", '{"stage2": {"lr_factor": Infinity}}')

    assert fields(resume) == {("lr", "finite_number")}
    assert fields(fork) == {("stage2.lr_factor", "finite_number")}


def test_a_nan_literal_inside_a_string_is_just_text(client: TestClient, job_body: dict[str, Any]) -> None:
    response = client.post("/jobs", json={**job_body, "name": "NaN Infinity"})

    assert response.status_code == 201


@pytest.mark.parametrize(
    "text",
    ['{"data_root": "dataset_B", "epochs": ' + "9" * 5000 + "}", "[" * 50_000 + "]" * 50_000],
    ids=["5000-digit-int", "deep-nesting"],
)
def test_pathological_json_is_a_4xx_not_a_crash(client: TestClient, text: str) -> None:
    response = post_raw(client, "/jobs", text)

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


def test_body_size_is_bounded_on_every_route_with_a_body(
    api_settings: ApiSettings, operator_key: Key, job_body: dict[str, Any]
) -> None:
    settings = api_settings.model_copy(update={"max_body_bytes": 2048})

    with TestClient(create_app(settings), headers=operator_key.headers) as client:
        job_id = client.post("/jobs", json=job_body).json()["id"]
        big = {"reason": "r" * 1900, "command_id": "c" * 200}
        answers = [
            client.post("/jobs", json={**job_body, "name": "x" * 3000}),
            client.post(f"/jobs/{job_id}/cancel", json=big),
            client.post("/session", json={"key": "k" * 3000}),
        ]

    for response in answers:
        assert response.status_code == 413
        assert response.json()["type"] == "about:blank" and response.json()["status"] == 413


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/jobs", {"limit": 0}, "limit"),
        ("/jobs", {"cursor": "c" * 513}, "cursor"),
        ("/jobs", {"name": "n" * 201}, "name"),
        ("/jobs/{id}/metrics", {"limit": 0}, "limit"),
        ("/jobs/{id}/metrics", {"after_epoch": CURSOR_MAX + 1}, "after_epoch"),
        ("/jobs/{id}/events", {"limit": -1}, "limit"),
        ("/jobs/{id}/events", {"after": 10**20}, "after"),
        ("/jobs/{id}/stream", {"after": 10**20}, "after"),
    ],
)
def test_page_and_cursor_parameters_are_bounded(
    client: TestClient, job_body: dict[str, Any], path: str, params: dict[str, Any], field: str
) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]

    response = client.get(path.format(id=job_id), params=params)

    assert response.status_code == 422
    assert field in {f for f, _ in fields(response)}


@pytest.mark.parametrize("value", ["99999999999999999999999", "²", "-1", "1e3"])
def test_a_last_event_id_out_of_range_is_a_422(
    client: TestClient, job_body: dict[str, Any], value: str
) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]
    header = value.encode("latin-1")  # "²" is a latin-1 byte that str.isdigit() calls a digit

    response = client.get(f"/jobs/{job_id}/stream", headers={"Last-Event-ID": header})  # type: ignore[dict-item]

    assert response.status_code == 422
    assert fields(response) == {("Last-Event-ID", "int_parsing")}


def test_a_page_larger_than_the_maximum_is_capped(
    api_settings: ApiSettings, operator_key: Key, job_body: dict[str, Any]
) -> None:
    settings = api_settings.model_copy(update={"max_page_size": 3, "default_page_size": 2})

    with TestClient(create_app(settings), headers=operator_key.headers) as client:
        for index in range(4):
            assert client.post("/jobs", json={**job_body, "name": f"j{index}"}).status_code == 201
        page = client.get("/jobs", params={"limit": 10**9}).json()
        default = client.get("/jobs").json()

    assert len(page["data"]) == 3 and page["next_cursor"] is not None
    assert len(default["data"]) == 2


def test_headers_are_bounded(client: TestClient, job_body: dict[str, Any]) -> None:
    response = client.post("/jobs", json=job_body, headers={"Idempotency-Key": "k" * 256})

    assert response.status_code == 422
    assert fields(response) == {("Idempotency-Key", "string_too_long")}


def test_queued_jobs_are_bounded_per_key(
    api_settings: ApiSettings, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    settings = api_settings.model_copy(update={"max_queued_jobs_per_key": 2})
    alice, bob = make_key("alice"), make_key("bob")

    with TestClient(create_app(settings)) as client:
        codes = [client.post("/jobs", json=job_body, headers=alice.headers).status_code for _ in range(3)]
        refused = client.post("/jobs", json=job_body, headers=alice.headers)
        bobs = client.post("/jobs", json=job_body, headers=bob.headers)
        first = client.get("/jobs", headers=alice.headers).json()["data"][-1]["id"]
        client.post(f"/jobs/{first}/cancel", headers=alice.headers)
        after_cancel = client.post("/jobs", json=job_body, headers=alice.headers)

    assert codes == [201, 201, 429]
    problem = refused.json()
    assert (problem["status"], problem["type"]) == (429, "urn:ocec-jobs:problem:quota-exceeded")
    assert "2 queued jobs" in problem["detail"]
    assert bobs.status_code == 201  # another key has its own quota
    assert after_cancel.status_code == 201  # only queued jobs count


def test_reasons_and_key_names_are_bounded(
    client: TestClient, job_body: dict[str, Any], make_key: KeyMaker
) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]
    admin = make_key("root", role="admin")  # type: ignore[arg-type]

    reason = client.post(f"/jobs/{job_id}/cancel", json={"reason": "r" * 2001})
    key_name = client.post("/keys", json={"name": "n" * 101, "role": "viewer"}, headers=admin.headers)

    assert fields(reason) == {("reason", "string_too_long")}
    assert fields(key_name) == {("name", "string_too_long")}


def test_json_dumps_writes_the_literals_python_accepts() -> None:
    """Why the guard exists: Python's json writes and reads NaN / Infinity without complaint."""
    assert json.loads(json.dumps({"lr": float("nan")}))["lr"] != json.loads(json.dumps({"lr": 1.0}))["lr"]
    assert json.loads("1e999") == float("inf")


@pytest.mark.parametrize(
    ("method", "path", "cap"),
    [
        ("POST", "/jobs", JSON_LIMIT),
        ("POST", "/jobs/{id}/cancel", JSON_LIMIT),
        ("POST", "/keys", SMALL_JSON_LIMIT),
        ("POST", "/session", SMALL_JSON_LIMIT),
        ("GET", "/jobs", NO_BODY_LIMIT),
        ("GET", "/models", NO_BODY_LIMIT),
    ],
)
def test_each_route_caps_its_body(
    client: TestClient, job_body: dict[str, Any], method: str, path: str, cap: int
) -> None:
    job_id = client.post("/jobs", json=job_body).json()["id"]
    url = path.format(id=job_id)

    over = client.request(method, url, content=b" " * (cap + 1), headers=JSON)
    at_cap = client.request(method, url, content=b"{}".ljust(cap), headers=JSON)

    assert over.status_code == 413
    assert at_cap.status_code != 413


def test_upload_routes_take_any_bytes_as_a_file_never_as_json(client: TestClient) -> None:
    bomb = ("[" + ",".join(["NaN"] * 500_000) + "]").encode()  # 2 MB: over any JSON cap

    response = client.post("/models", content=bomb, headers=JSON)

    assert response.status_code == 422
    assert fields(response) == {("file", "checkpoint_format")}
    assert len(response.content) < 4096


def test_a_body_of_too_many_values_is_refused_before_validation(client: TestClient) -> None:
    """Thousands of unknown fields would each be a validation error built on the event loop."""
    text = "{" + ",".join(f'"k{i}": 0' for i in range(MAX_JSON_VALUES)) + "}"  # the object makes 1001

    response = post_raw(client, "/jobs", text)

    assert response.status_code == 422
    assert fields(response) == {("body", "json_too_many_values")}
