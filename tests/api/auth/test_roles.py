"""Every operation of the schema: 401 without a key, 403 for a role too low, open ones stay open."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth.policy import PUBLIC_OPERATIONS, unprotected_operations
from jobstore.repo.keys import Role
from tests.api.conftest import Key, KeyMaker

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"
READ = {"get", "head"}


def operations(client: TestClient) -> list[tuple[str, str]]:
    schema = client.get("/openapi.json").json()
    return [(method, path) for path, ops in schema["paths"].items() for method in ops]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "best.pt" if m.group(0) == "{name}" else UNKNOWN_ID, path)


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    return client.request(method.upper(), concrete(path), headers=headers or {}, json={})


def protected(client: TestClient) -> list[tuple[str, str]]:
    return [op for op in operations(client) if op not in PUBLIC_OPERATIONS]


def test_the_schema_lists_the_operations_this_test_walks(client: TestClient) -> None:
    ops = protected(client)

    assert ("post", "/jobs") in ops and ("post", "/jobs/{job_id}/fork") in ops
    assert ("get", "/jobs/{job_id}/stream") in ops and ("delete", "/keys/{key_id}") in ops
    assert len(ops) >= 17
    assert unprotected_operations(client.get("/openapi.json").json()) == []


def test_without_a_key_every_protected_operation_is_a_401_problem(anonymous: TestClient) -> None:
    for method, path in protected(anonymous):
        response = call(anonymous, method, path)

        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == 'Bearer realm="ocec-jobs"'
        assert response.json()["type"] == "urn:ocec-jobs:problem:unauthenticated"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer ocec_not-a-real-key-at-all-000000000000000000000",
        "Bearer",
        "Basic YWxpY2U6c2VjcmV0",
        "ocec_bare-key-without-scheme",
        "Bearer ocec_" + "x" * 5000,
    ],
)
def test_a_bad_key_is_a_401_with_invalid_token(anonymous: TestClient, authorization: str) -> None:
    response = anonymous.get("/jobs", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="ocec-jobs", error="invalid_token"'


def test_a_viewer_reads_but_every_mutating_operation_is_403(
    anonymous: TestClient, make_key: KeyMaker
) -> None:
    viewer = make_key("vera", Role.VIEWER)

    for method, path in protected(anonymous):
        response = call(anonymous, method, path, viewer.headers)
        if method in READ and not path.startswith("/keys"):
            assert response.status_code not in (401, 403), (method, path, response.text)
            continue
        assert response.status_code == 403, (method, path, response.text)
        problem = response.json()
        assert problem["type"] == "urn:ocec-jobs:problem:forbidden"
        assert problem["role"] == "viewer"


def test_an_operator_may_write_but_not_manage_keys(anonymous: TestClient, operator_key: Key) -> None:
    for method, path in protected(anonymous):
        response = call(anonymous, method, path, operator_key.headers)
        if path.startswith("/keys"):
            assert response.status_code == 403, (method, path)
            assert response.json()["required_role"] == "admin"
        else:
            assert response.status_code not in (401, 403), (method, path, response.text)


def test_an_admin_may_do_everything(anonymous: TestClient, make_key: KeyMaker) -> None:
    admin = make_key("root", Role.ADMIN)

    for method, path in protected(anonymous):
        response = call(anonymous, method, path, admin.headers)
        assert response.status_code not in (401, 403), (method, path, response.text)


def test_a_revoked_key_stops_working_at_once(client: TestClient, make_key: KeyMaker) -> None:
    admin, victim = make_key("root", Role.ADMIN), make_key("temp", Role.OPERATOR)
    assert client.get("/jobs", headers=victim.headers).status_code == 200

    revoked = client.delete(f"/keys/{victim.id}", headers=admin.headers)

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    after = client.get("/jobs", headers=victim.headers)
    assert after.status_code == 401
    assert "invalid_token" in after.headers["www-authenticate"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/docs", "/openapi.json"])
def test_probes_page_shell_and_docs_are_open(anonymous: TestClient, path: str) -> None:
    assert anonymous.get(path).status_code == 200
