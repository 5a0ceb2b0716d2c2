"""How the client turns a server's refusal into an exit code (real httpx responses, no server)."""

from __future__ import annotations

import httpx
import pytest

from ocec_jobs.cli.client.connection import FAILED_KEYS, cli_error
from ocec_jobs.cli.client.exitcodes import Exit
from ocec_jobs.client import ApiError


@pytest.mark.parametrize(
    ("status", "problem", "code"),
    [
        (401, "urn:ocec-jobs:problem:unauthenticated", Exit.AUTH),
        (429, FAILED_KEYS, Exit.AUTH),
        (429, "urn:ocec-jobs:problem:quota-exceeded", Exit.REFUSED),
    ],
)
def test_refusals_of_the_key_exit_4_and_others_5(status: int, problem: str, code: Exit) -> None:
    body = {"type": problem, "title": "t", "status": status, "detail": "no\x1b[2K"}
    response = httpx.Response(status, json=body, request=httpx.Request("GET", "http://x/jobs"))

    refused = cli_error(ApiError.from_response(response), has_key=False)

    assert refused.code == code
    assert "no\\x1b[2K" in refused.message  # the detail's escapes are shown, not obeyed
