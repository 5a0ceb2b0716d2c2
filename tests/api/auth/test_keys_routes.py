"""Key management over HTTP (admins only): create shows the key once, list never, revoke works."""

from __future__ import annotations

from fastapi.testclient import TestClient

from jobstore.repo.keys import Role
from tests.api.conftest import Key, KeyMaker


def test_an_admin_creates_lists_and_revokes_keys(client: TestClient, make_key: KeyMaker) -> None:
    admin = make_key("root", Role.ADMIN)

    created = client.post("/keys", json={"name": "ci", "role": "viewer"}, headers=admin.headers)
    listed = client.get("/keys", headers=admin.headers)

    assert created.status_code == 201
    new = created.json()
    assert new["key"].startswith("ocec_") and new["prefix"] == new["key"][:12]
    assert (new["name"], new["role"], new["revoked_at"]) == ("ci", "viewer", None)
    assert client.get("/jobs", headers={"Authorization": f"Bearer {new['key']}"}).status_code == 200
    assert new["key"] not in listed.text and "key_hash" not in listed.text
    assert {k["name"] for k in listed.json()} >= {"root", "ci", "tester"}

    revoked = client.delete(f"/keys/{new['id']}", headers=admin.headers)

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/jobs", headers={"Authorization": f"Bearer {new['key']}"}).status_code == 401


def test_bad_key_requests_are_problems(client: TestClient, make_key: KeyMaker) -> None:
    admin = make_key("root", Role.ADMIN)

    bad_role = client.post("/keys", json={"name": "x", "role": "root"}, headers=admin.headers)
    bad_name = client.post("/keys", json={"name": "a\nb", "role": "viewer"}, headers=admin.headers)
    unknown = client.delete(f"/keys/{'0' * 32}", headers=admin.headers)

    assert (bad_role.status_code, bad_role.json()["errors"][0]["field"]) == (422, "role")
    assert (bad_name.status_code, bad_name.json()["errors"][0]["field"]) == (422, "name")
    assert (unknown.status_code, unknown.json()["type"]) == (404, "urn:ocec-jobs:problem:not-found")


def test_an_operator_cannot_manage_keys(client: TestClient, operator_key: Key) -> None:
    response = client.post("/keys", json={"name": "escalate", "role": "admin"})

    assert response.status_code == 403
    assert (response.json()["role"], response.json()["required_role"]) == ("operator", "admin")


def test_the_last_active_admin_key_cannot_be_revoked(client: TestClient, make_key: KeyMaker) -> None:
    first, second = make_key("root", Role.ADMIN), make_key("root-2", Role.ADMIN)

    allowed = client.delete(f"/keys/{second.id}", headers=first.headers)
    refused = client.delete(f"/keys/{first.id}", headers=first.headers)

    assert allowed.status_code == 200
    assert (refused.status_code, refused.json()["type"]) == (409, "urn:ocec-jobs:problem:last-admin-key")
    assert client.get("/keys", headers=first.headers).status_code == 200  # still an admin
