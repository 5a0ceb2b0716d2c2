"""Signing in with an API key: the data calls of a page without a session send the browser to the
sign-in page, a wrong key is refused there, the right one leads back to the page that asked."""

from __future__ import annotations

import re
from html import escape
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.api.dashboard.conftest import Watch
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


# Known open-redirect bypasses, as sent in the query (the server percent-decodes them): a browser's
# URL parser drops tabs and newlines and reads a backslash as a slash, so each of these once led
# (or could lead) to evil.example or ran script.
BYPASSES = [
    "//evil.example/x",
    "/%09/evil.example/phish",
    "/%0A/evil.example",
    "/%0D/evil.example",
    "/%09%5Cevil.example",
    "/%5Cevil.example",
    "%5C/evil.example",
    "%09//evil.example",
    "%20//evil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "https:evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "java%09script:alert(1)",
]


@pytest.mark.parametrize("bypass", BYPASSES)
def test_the_server_hands_the_page_only_a_local_path(stack: Stack, bypass: str) -> None:
    html = httpx.get(f"{stack.url}/ui/signin?next={bypass}").text

    assert 'data-next="/"' in html


def test_known_bypasses_end_on_this_origin_after_sign_in(
    signed_out: Page, stack: Stack, watch: Watch
) -> None:
    landed, foreign = sign_in_with_each(signed_out, stack, [*BYPASSES, "/%3Fstate=running"])

    assert {bypass: url for bypass, url in landed.items() if not ours(stack, url)} == {}
    assert foreign == [] and watch.dialogs == []
    assert landed["/%3Fstate=running"] == f"{stack.url}/?state=running"  # a local target is kept


def test_the_page_alone_keeps_the_browser_here(signed_out: Page, stack: Stack, watch: Watch) -> None:
    """signin_page.js on its own: the page is served with each bypass left in data-next, as a server
    that forgot to check it would serve it."""

    def forged(route: Route) -> None:
        target = unquote(parse_qs(urlsplit(route.request.url).query)["next"][0])
        forged_attribute = f'data-next="{escape(target)}"'
        page_html = re.sub(r'data-next="[^"]*"', lambda _: forged_attribute, route.fetch().text())
        route.fulfill(body=page_html, headers={"content-type": "text/html; charset=utf-8"})

    signed_out.route("**/ui/signin?*", forged)
    landed, foreign = sign_in_with_each(signed_out, stack, [quote(b, safe="") for b in BYPASSES])

    assert {bypass: url for bypass, url in landed.items() if not ours(stack, url)} == {}
    assert foreign == [] and watch.dialogs == []


def sign_in_with_each(page: Page, stack: Stack, targets: list[str]) -> tuple[dict[str, str], list[str]]:
    """Sign in from /ui/signin?next=<target> for each target: where the browser landed, and every
    request it made to another host."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    landed = {}
    for target in targets:
        page.goto(f"/ui/signin?next={target}")
        page.fill("#api-key", stack.key)
        page.click("#signin-form button[type=submit]")
        page.wait_for_url(lambda url: "/ui/signin" not in url, wait_until="commit")
        landed[target] = page.url
    return landed, [url for url in requested if not ours(stack, url)]


def ours(stack: Stack, url: str) -> bool:
    return urlsplit(url).netloc == urlsplit(stack.url).netloc
