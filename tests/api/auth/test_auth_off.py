"""Auth is on unless explicitly turned off; off, the API says so loudly and trusts X-Actor."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.main import AUTH_OFF_WARNING, create_app
from api.settings import ApiSettings
from jobstore.settings import AuthMode


def test_auth_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCEC_AUTH", raising=False)

    assert ApiSettings().auth_enabled


@pytest.mark.parametrize(("value", "enabled"), [("on", True), ("off", False)])
def test_the_environment_turns_it_on_or_off(
    monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool
) -> None:
    monkeypatch.setenv("OCEC_AUTH", value)

    assert ApiSettings().auth_enabled is enabled


@pytest.mark.parametrize("value", ["false", "0", "no", "disabled", ""])
def test_anything_but_on_or_off_is_a_settings_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OCEC_AUTH", value)

    with pytest.raises(ValidationError):
        ApiSettings()


def test_an_unvalidated_value_fails_closed(api_settings: ApiSettings) -> None:
    assert api_settings.model_copy(update={"auth": "nonsense"}).auth_enabled


def test_with_auth_off_no_key_is_needed_and_a_warning_is_logged(
    api_settings: ApiSettings, job_body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    settings = api_settings.model_copy(update={"auth": AuthMode.OFF})

    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        created = client.post("/jobs", json=job_body, headers={"X-Actor": "alice"})
        me = client.get("/session/me").json()
        signed = client.post("/session", json={"key": "anything"})
        events = client.get(f"/jobs/{created.json()['id']}/events").json()["data"]

    assert AUTH_OFF_WARNING in caplog.text
    assert created.status_code == 201
    assert events[0]["actor"] == "alice"
    assert (me["auth"], me["role"]) == ("off", "admin")
    assert signed.status_code == 200 and "set-cookie" not in signed.headers


def test_with_auth_on_no_warning_is_logged(
    api_settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(api_settings)

    assert AUTH_OFF_WARNING not in caplog.text


def test_with_auth_off_an_actor_with_control_characters_is_refused(
    api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    settings = api_settings.model_copy(update={"auth": AuthMode.OFF})

    with TestClient(create_app(settings)) as client:
        refused = client.post("/jobs", json=job_body, headers={"X-Actor": "eve\x1b[2K"})

    error = refused.json()["errors"][0]
    assert (refused.status_code, error["field"], error["location"]) == (422, "X-Actor", "header")
