"""Browser-test fixtures: one real stack (API + Celery worker + Redis + SQLite) and one headless
Chromium for the whole session, a fresh browser context per test that records dialogs, console
errors and uncaught page errors.

Chromium is Debian's (/usr/bin/chromium, or OCEC_CHROMIUM); Playwright never downloads a browser.
Screenshots go to docs/img/ when OCEC_SCREENSHOTS=1 (to refresh the docs), else to the test's tmp dir.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page

from tests.api.dashboard.stack import Stack, running_stack

DOCS_IMG = Path(__file__).resolve().parents[3] / "docs" / "img"
VIEWPORT = {"width": 1440, "height": 1000}


@pytest.fixture(scope="session")
def stack(
    _sqlite_template: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ui-stack")
    target = tmp / "ocec.db"
    with sqlite3.connect(_sqlite_template) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    with running_stack(tmp, f"sqlite:///{target}", redis_url) as running:
        yield running


@dataclass
class Watch:
    """What a page did that it should not: dialogs opened, console errors, uncaught exceptions."""

    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


@pytest.fixture
def watch() -> Watch:
    return Watch()


def new_tab(browser: Browser, stack: Stack, watch: Watch) -> Page:
    """A page in a fresh browser context (no cookies) that reports to ``watch``."""
    context = browser.new_context(base_url=stack.url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("dialog", watch.on_dialog)
    tab.on("console", watch.on_console)
    tab.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    return tab


@pytest.fixture
def signed_out(browser: Browser, stack: Stack, watch: Watch) -> Iterator[Page]:
    tab = new_tab(browser, stack, watch)
    yield tab
    tab.context.close()
    assert not watch.page_errors, f"uncaught errors in the page: {watch.page_errors}"


@pytest.fixture
def page(signed_out: Page, stack: Stack) -> Page:
    """Signed in as the operator: POST /session from the context sets its session and CSRF cookies."""
    answer = signed_out.context.request.post("/session", data={"key": stack.key})
    assert answer.ok, answer.text()
    return signed_out


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/img/ with OCEC_SCREENSHOTS=1, else this test's tmp dir."""
    if os.environ.get("OCEC_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path
