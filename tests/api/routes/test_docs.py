"""``/docs`` works on a closed network: Swagger UI from this server only, under the strict page CSP.

The HTTP tests read the page and fetch everything it references; the browser test opens it in
headless Chromium with every request to another origin aborted and checks that Swagger UI rendered
the API's operations with no CSP violation and no error.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Route

from api.routes.docs import script_hashes
from api.security import PAGE_CSP

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no database work here
REFERENCE = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def directives(csp: str) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in csp.split(";"))


def test_docs_references_only_same_origin_assets_and_they_are_served(anonymous: TestClient) -> None:
    page = anonymous.get("/docs")
    references = REFERENCE.findall(page.text)

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert len(references) == 3  # stylesheet, favicon, Swagger UI bundle
    assert "openapi.json" in page.text
    for ref in references:
        parts = urlsplit(ref)
        assert not parts.scheme and not parts.netloc, f"{ref} is not same-origin"
        asset = anonymous.get(ref)  # no key: the reference is public like /openapi.json
        assert asset.status_code == 200, ref
        assert len(asset.content) > 1000, ref
        assert asset.headers["cache-control"] == "public, max-age=86400"
    assert "jsdelivr" not in page.text and "https://" not in page.text


def test_the_docs_csp_is_the_page_csp_plus_the_hash_of_its_one_inline_script(anonymous: TestClient) -> None:
    page = anonymous.get("/docs")
    csp = page.headers["content-security-policy"]
    [inline] = script_hashes(page.text)

    assert directives(csp) == directives(PAGE_CSP) | {"script-src": f"'self' {inline}"}
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp


def test_unknown_assets_and_redoc_are_404(anonymous: TestClient) -> None:
    assert anonymous.get("/docs/assets/redoc.standalone.js").status_code == 404  # in the package, not used
    assert anonymous.get("/docs/assets/..%2f..%2fcore.py").status_code == 404
    assert anonymous.get("/redoc").status_code == 404


@pytest.mark.browser
def test_swagger_ui_renders_the_api_offline_in_chromium(live_server: str, browser: Browser) -> None:
    elsewhere: list[str] = []
    problems: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(live_server):
            route.continue_()
        else:  # a closed network: nothing else answers
            elsewhere.append(route.request.url)
            route.abort()

    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.route("**/*", only_this_server)
        tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: problems.append(str(e)))
        tab.goto(f"{live_server}/docs")
        tab.wait_for_selector(".opblock", timeout=30_000)
        operations = tab.locator(".opblock").count()
        title = tab.locator(".info .title").inner_text()
    finally:
        context.close()

    assert operations >= 20  # every documented operation is listed
    assert title.startswith("ocec-jobs")
    assert elsewhere == []
    assert problems == []  # CSP violations are console errors
