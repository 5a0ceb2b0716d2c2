"""Failed keys are rate-limited per client address (429 + Retry-After), and the right key still works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.auth.failures import FailureLimiter
from api.main import create_app
from api.settings import ApiSettings
from tests.api.conftest import Key

WRONG = {"Authorization": "Bearer ocec_" + "x" * 43}


@pytest.fixture
def limited(api_settings: ApiSettings) -> Iterator[TestClient]:
    settings = api_settings.model_copy(update={"auth_failure_limit": 3, "auth_failure_window_seconds": 600})
    with TestClient(create_app(settings), client=("192.0.2.1", 40000)) as client:
        yield client


def test_past_the_limit_failures_are_429_but_the_right_key_works(
    limited: TestClient, operator_key: Key
) -> None:
    first = [limited.get("/jobs", headers=WRONG).status_code for _ in range(3)]
    over = limited.get("/jobs", headers=WRONG)
    sign_in = limited.post("/session", json={"key": "ocec_" + "y" * 43})

    assert first == [401, 401, 401]
    assert (over.status_code, over.json()["type"]) == (429, "urn:ocec-jobs:problem:too-many-failed-keys")
    assert 0 < int(over.headers["retry-after"]) <= 600
    assert sign_in.status_code == 429
    assert limited.get("/jobs", headers=operator_key.headers).status_code == 200
    assert limited.post("/session", json={"key": operator_key.secret}).status_code == 200
    elsewhere = TestClient(limited.app, client=("192.0.2.2", 40000))
    assert elsewhere.get("/jobs", headers=WRONG).status_code == 401  # per address


def test_failures_expire_with_their_window() -> None:
    limiter = FailureLimiter(limit=2, window=10.0)

    assert [limiter.fail("a", t) for t in (0.0, 1.0)] == [None, None]
    assert limiter.fail("a", 2.0) == 9.0  # the failure at 1.0 must leave the window first
    assert limiter.fail("a", 11.5) is None  # 0.0 and 1.0 left it
