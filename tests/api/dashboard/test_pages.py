"""The dashboard's page shells and assets, without a browser: open without a key, strict CSP, no
inline script or handler, autoescaped values, every module and asset served with the right type."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.routes.dashboard import STATIC_DIR, TEMPLATES

JOB_ID = "0123456789abcdef0123456789abcdef"
PAGES = ["/", f"/ui/jobs/{JOB_ID}", "/ui/compare?ids=a&ids=b", "/ui/signin?next=/ui/compare"]
IMPORT = re.compile(r'^import .* from "\./([a-z_]+\.js)";$', re.MULTILINE)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_open_shells_with_a_strict_csp_and_no_inline_code(anonymous: TestClient, path: str) -> None:
    response = anonymous.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    tags = parse(response.text)
    scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
    assert (
        len(scripts) == 1 and scripts[0]["type"] == "module" and str(scripts[0]["src"]).startswith("/static/")
    )
    assert tags.script_text == ""
    assert not [
        (tag, name) for tag, attrs in tags.tags for name in attrs if name.startswith("on") or name == "style"
    ]
    for tag, attrs in tags.tags:  # everything loads from this server
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or not re.match(r"^(https?:)?//", value), (tag, value)


def test_job_data_needs_a_key_while_the_pages_do_not(anonymous: TestClient) -> None:
    assert anonymous.get("/").status_code == 200
    assert anonymous.get("/jobs").status_code == 401
    assert anonymous.get(f"/jobs/{JOB_ID}/plot.png").status_code == 401


def test_values_in_pages_are_autoescaped_and_next_stays_local(anonymous: TestClient) -> None:
    evil = anonymous.get("/ui/signin", params={"next": '/x"><script>alert(1)</script>'})
    elsewhere = anonymous.get("/ui/signin", params={"next": "//evil.example/"})
    local = anonymous.get("/ui/signin", params={"next": f"/ui/jobs/{JOB_ID}"})

    assert "<script>alert" not in evil.text
    body = next(attrs for tag, attrs in parse(evil.text).tags if tag == "body")
    assert body["data-next"] == '/x"><script>alert(1)</script>'  # kept as an attribute value only
    assert 'data-next="/"' in elsewhere.text
    assert f'data-next="/ui/jobs/{JOB_ID}"' in local.text
    assert TEMPLATES.env.autoescape  # Jinja autoescape is on for every template


def test_a_malformed_job_id_is_refused(anonymous: TestClient) -> None:
    assert anonymous.get("/ui/jobs/not-a-job").status_code == 422


def test_every_module_and_asset_is_served_with_its_type(anonymous: TestClient) -> None:
    modules = sorted(STATIC_DIR.glob("js/*.js"))
    assert modules
    for module in modules:
        response = anonymous.get(f"/static/js/{module.name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")  # module scripts need it
        for imported in IMPORT.findall(module.read_text()):
            assert (module.parent / imported).is_file(), f"{module.name} imports a missing {imported}"
    css = anonymous.get("/static/css/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert anonymous.get("/static/img/favicon.svg").headers["content-type"] == "image/svg+xml"


def test_every_page_module_exists(anonymous: TestClient) -> None:
    for path in PAGES:
        src = next(a["src"] for t, a in parse(anonymous.get(path).text).tags if t == "script")
        name = Path(str(src).split("?")[0]).name
        assert (STATIC_DIR / "js" / name).is_file(), name
