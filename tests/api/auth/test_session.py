"""Dashboard sign-in: a signed HttpOnly cookie, CSRF on writes, revocation, expiry, SSE with the cookie."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.auth.cookies import SessionSigner
from api.auth.secret import SECRET_FILE, session_secret
from api.main import create_app
from api.settings import ApiSettings
from api.sse import END_EVENT
from jobstore.repo.keys import Role
from tests.api.conftest import Key, KeyMaker
from tests.api.sse_client import messages

CSRF = "X-CSRF-Token"


def sign_in(client: TestClient, key: Key) -> dict[str, Any]:
    response = client.post("/session", json={"key": key.secret})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_sign_in_sets_an_httponly_strict_session_cookie_and_a_csrf_cookie(
    anonymous: TestClient, operator_key: Key
) -> None:
    response = anonymous.post("/session", json={"key": operator_key.secret})

    assert response.status_code == 200
    body = response.json()
    assert (body["auth"], body["name"], body["role"], body["key_id"]) == (
        "session", "tester", "operator", operator_key.id,
    )  # fmt: skip
    cookies = {raw.split("=", 1)[0]: raw.lower() for raw in response.headers.get_list("set-cookie")}
    session, csrf = cookies["ocec_session"], cookies["ocec_csrf"]
    for cookie in (session, csrf):
        assert "samesite=strict" in cookie and "path=/" in cookie and "max-age=43200" in cookie
        assert "secure" not in cookie  # plain http: a Secure cookie would never come back
    assert "httponly" in session and "httponly" not in csrf
    assert operator_key.secret not in response.headers.get("set-cookie", "")
    assert anonymous.cookies["ocec_csrf"] == body["csrf_token"]
    assert response.headers["cache-control"] == "no-store"


def test_over_https_the_cookies_are_secure(client: TestClient, operator_key: Key) -> None:
    https = TestClient(client.app, base_url="https://testserver")

    response = https.post("/session", json={"key": operator_key.secret})

    assert all("secure" in raw.lower() for raw in response.headers.get_list("set-cookie"))
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_a_signed_in_browser_reads_and_writes_with_the_csrf_header(
    anonymous: TestClient, operator_key: Key, job_body: dict[str, Any]
) -> None:
    token = sign_in(anonymous, operator_key)["csrf_token"]

    listed = anonymous.get("/jobs")
    without = anonymous.post("/jobs", json=job_body)
    wrong = anonymous.post("/jobs", json=job_body, headers={CSRF: token[:-2] + "xx"})
    created = anonymous.post("/jobs", json=job_body, headers={CSRF: token})

    assert listed.status_code == 200
    for refused in (without, wrong):
        assert refused.status_code == 403
        assert refused.json()["type"] == "urn:ocec-jobs:problem:csrf"
    assert created.status_code == 201
    events = anonymous.get(f"/jobs/{created.json()['id']}/events").json()["data"]
    assert events[0]["actor"] == operator_key.actor


def test_the_csrf_token_of_another_session_does_not_work(
    client: TestClient, operator_key: Key, job_body: dict[str, Any]
) -> None:
    browser_a, browser_b = TestClient(client.app), TestClient(client.app)
    sign_in(browser_a, operator_key)
    token_b = sign_in(browser_b, operator_key)["csrf_token"]

    response = browser_a.post("/jobs", json=job_body, headers={CSRF: token_b})

    assert response.status_code == 403


def test_a_bearer_key_needs_no_csrf_token(client: TestClient, job_body: dict[str, Any]) -> None:
    assert client.post("/jobs", json=job_body).status_code == 201


def test_session_me_says_who_is_signed_in(anonymous: TestClient, make_key: KeyMaker) -> None:
    viewer = make_key("vera", Role.VIEWER)
    assert anonymous.get("/session/me").status_code == 401

    signed = sign_in(anonymous, viewer)
    me = anonymous.get("/session/me").json()
    by_bearer = anonymous.get("/session/me", headers=viewer.headers).json()

    assert (me["auth"], me["name"], me["role"], me["csrf_token"]) == (
        "session", "vera", "viewer", signed["csrf_token"],
    )  # fmt: skip
    assert datetime.fromisoformat(me["expires_at"]) > datetime.now(UTC) + timedelta(hours=11)
    assert (by_bearer["auth"], by_bearer["csrf_token"]) == ("bearer", None)


def test_a_viewer_session_cannot_write_even_with_the_token(
    anonymous: TestClient, make_key: KeyMaker, job_body: dict[str, Any]
) -> None:
    token = sign_in(anonymous, make_key("vera", Role.VIEWER))["csrf_token"]

    response = anonymous.post("/jobs", json=job_body, headers={CSRF: token})

    assert (response.status_code, response.json()["type"]) == (403, "urn:ocec-jobs:problem:forbidden")


@pytest.mark.parametrize("key", ["ocec_wrong", "", "x" * 300])
def test_sign_in_with_a_bad_key_is_refused(anonymous: TestClient, key: str) -> None:
    response = anonymous.post("/session", json={"key": key})

    assert response.status_code in (401, 422)
    assert "set-cookie" not in response.headers


def test_sign_in_from_a_foreign_origin_is_refused(anonymous: TestClient, operator_key: Key) -> None:
    foreign = anonymous.post(
        "/session", json={"key": operator_key.secret}, headers={"Origin": "https://evil.example"}
    )
    own = anonymous.post(
        "/session", json={"key": operator_key.secret}, headers={"Origin": "http://testserver"}
    )

    assert (foreign.status_code, foreign.json()["type"]) == (403, "urn:ocec-jobs:problem:csrf")
    assert "set-cookie" not in foreign.headers
    assert own.status_code == 200


def test_sign_in_refuses_a_form_body(anonymous: TestClient, operator_key: Key) -> None:
    """A cross-site HTML form can only send form or text bodies: they are not JSON, so no sign-in."""
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        response = anonymous.post(
            "/session",
            content=f'{{"key": "{operator_key.secret}"}}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 422
        assert "set-cookie" not in response.headers


def test_a_tampered_or_expired_session_is_a_401(
    anonymous: TestClient, api_settings: ApiSettings, operator_key: Key
) -> None:
    sign_in(anonymous, operator_key)
    genuine = anonymous.cookies["ocec_session"]
    signer = SessionSigner(session_secret(api_settings))
    expired, _ = signer.issue(operator_key.id, datetime.now(UTC) - timedelta(days=2), 3600)
    forged, _ = SessionSigner(b"another secret" * 4).issue(operator_key.id, datetime.now(UTC), 3600)
    other_key = genuine.replace(operator_key.id, "f" * 32)

    for value in (expired, forged, other_key, genuine[:-3], "v1.x.y.z.w", "garbage"):
        anonymous.cookies.set("ocec_session", value)
        response = anonymous.get("/jobs")
        assert response.status_code == 401, value
        assert "invalid_token" in response.headers["www-authenticate"]


def test_revoking_the_key_ends_its_sessions(
    anonymous: TestClient, client: TestClient, make_key: KeyMaker
) -> None:
    admin, temp = make_key("root", Role.ADMIN), make_key("temp", Role.OPERATOR)
    sign_in(anonymous, temp)
    assert anonymous.get("/jobs").status_code == 200

    client.delete(f"/keys/{temp.id}", headers=admin.headers)

    assert anonymous.get("/jobs").status_code == 401


def test_sign_out_clears_both_cookies(anonymous: TestClient, operator_key: Key) -> None:
    sign_in(anonymous, operator_key)

    response = anonymous.delete("/session")

    assert response.status_code == 204
    cleared = response.headers.get_list("set-cookie")
    assert {raw.split("=", 1)[0] for raw in cleared} == {"ocec_session", "ocec_csrf"}
    assert all("max-age=0" in raw.lower() for raw in cleared)
    assert anonymous.get("/jobs").status_code == 401


def test_sign_out_ends_the_session_on_the_server(anonymous: TestClient, operator_key: Key) -> None:
    """A copy of the cookie kept after sign-out (a stolen one) stops working at once; another session
    of the same key does not."""
    other = TestClient(anonymous.app)
    sign_in(anonymous, operator_key), sign_in(other, operator_key)
    kept = anonymous.cookies.get("ocec_session")
    assert kept and anonymous.get("/jobs").status_code == 200

    assert anonymous.delete("/session").status_code == 204

    replayed = TestClient(anonymous.app, cookies={"ocec_session": kept}).get("/jobs")
    assert replayed.status_code == 401 and "signed out" in replayed.json()["detail"]
    assert other.get("/jobs").status_code == 200
    assert anonymous.delete("/session").status_code == 204  # signing out again is harmless


def test_the_stream_works_with_the_session_cookie(
    live_server: str, operator_key: Key, job_body: dict[str, Any]
) -> None:
    with httpx.Client(base_url=live_server, timeout=10.0) as browser:
        token = browser.post("/session", json={"key": operator_key.secret}).json()["csrf_token"]
        job_id = browser.post("/jobs", json=job_body, headers={CSRF: token}).json()["id"]
        browser.post(f"/jobs/{job_id}/cancel", headers={CSRF: token})

        with browser.stream("GET", f"/jobs/{job_id}/stream") as response:
            seen = list(messages(response))

    assert response.status_code == 200
    assert seen[-1].event == END_EVENT and seen[-1].json()["state"] == "cancelled"


def test_the_session_secret_is_generated_once_with_mode_0600(api_settings: ApiSettings) -> None:
    first = session_secret(api_settings)
    path = api_settings.home / SECRET_FILE

    assert session_secret(api_settings) == first and len(first) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_loose_secret_file_is_tightened(api_settings: ApiSettings) -> None:
    path = api_settings.home / SECRET_FILE
    path.write_text("s" * 64)
    path.chmod(0o644)

    assert session_secret(api_settings) == b"s" * 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_configured_secret_signs_sessions_and_others_do_not_verify(
    api_settings: ApiSettings, operator_key: Key
) -> None:
    one = api_settings.model_copy(update={"session_secret": SecretStr("a" * 40)})
    two = api_settings.model_copy(update={"session_secret": SecretStr("b" * 40)})

    with TestClient(create_app(one)) as browser:
        sign_in(browser, operator_key)
        cookie = browser.cookies["ocec_session"]
        assert browser.get("/jobs").status_code == 200
    with TestClient(create_app(two), cookies={"ocec_session": cookie}) as other:
        assert other.get("/jobs").status_code == 401
    assert not (api_settings.home / SECRET_FILE).exists()
