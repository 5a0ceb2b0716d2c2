"""Webhook URLs: the server calls them, so only plain http(s) with a host and no credentials."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobstore.settings import Settings
from jobstore.spec import JobSpec, without_secrets

SECRET = "s" * 16


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http:///no-host",
        "https://user:pw@example.org/hook",
        "https://example.org/ho ok",
        "https://example.org/\nhook",
        "https://example.org:99999/hook",
        "/relative/hook",
    ],
)
def test_a_url_the_server_should_not_call_is_refused_naming_the_field(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        JobSpec(data_root="d", notify={"urls": [url], "secret": SECRET})  # type: ignore[arg-type]
    assert caught.value.errors()[0]["loc"][:2] == ("notify", "urls")


def test_plain_http_and_https_urls_are_kept_as_given() -> None:
    urls = ["http://127.0.0.1:8080/hook", "https://hooks.example.org/ocec?team=eyes"]
    spec = JobSpec(data_root="d", notify={"urls": urls, "secret": SECRET})  # type: ignore[arg-type]
    assert spec.notify is not None and spec.notify.urls == urls


def test_a_short_secret_is_refused_and_a_stored_one_is_never_shown() -> None:
    with pytest.raises(ValidationError, match=r"notify\.secret"):
        JobSpec(data_root="d", notify={"urls": ["https://a.example/h"], "secret": "short"})  # type: ignore[arg-type]
    stored = {"data_root": "d", "notify": {"urls": ["https://a.example/h"], "secret": SECRET}}
    assert without_secrets(stored) == {"data_root": "d", "notify": {"urls": ["https://a.example/h"]}}
    assert stored["notify"]["secret"] == SECRET  # type: ignore[index]  # the stored copy is left alone


def test_server_urls_need_a_secret_and_are_checked_the_same_way() -> None:
    with pytest.raises(ValidationError, match="notify_secret"):
        Settings(notify_urls=["https://a.example/h"])
    with pytest.raises(ValidationError, match="notify_urls"):
        Settings(notify_urls=["gopher://a.example/h"], notify_secret=SECRET)
    settings = Settings(notify_urls=["https://a.example/h"], notify_secret=SECRET)
    assert SECRET not in repr(settings)
