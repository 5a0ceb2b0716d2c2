"""Signing in with an API key: the data calls of a page without a session send the browser to the
sign-in page, a wrong key is refused there, the right one leads back to the page that asked."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.api.dashboard.stack import OPERATOR, Stack

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def test_sign_in_with_a_key_and_come_back(signed_out: Page, stack: Stack) -> None:
    page = signed_out
    page.goto("/?state=running")
    expect(page).to_have_url(re.compile(r"/ui/signin\?next=%2F%3Fstate%3Drunning$"))

    page.fill("#api-key", "ocec_not-a-real-key")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-form .form-error")).to_contain_text("not valid")

    page.fill("#api-key", stack.key)
    page.click("#signin-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/\?state=running$"))
    expect(page.locator("#whoami")).to_contain_text(f"{OPERATOR} · operator")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["ocec_session"]["httpOnly"] is True
    assert page.evaluate("document.cookie").count("ocec_session") == 0  # not readable by scripts

    page.click("#whoami button")  # sign out
    expect(page).to_have_url(re.compile(r"/ui/signin"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/signin\?next=%2F$"))


def test_next_must_stay_on_this_server(signed_out: Page, stack: Stack) -> None:
    signed_out.goto("/ui/signin?next=//evil.example/x")
    assert signed_out.locator("body").get_attribute("data-next") == "/"
