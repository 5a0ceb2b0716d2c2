"""User-controlled text is rendered as text (issue 6, point 5): a job named like an <img> with an
onerror handler, a stage reason holding a <script>, and an operator whose key name is markup show
up literally on the list, the job page (title, timeline, stage boundaries) and the compare page;
no element is created from them, no script runs, no dialog opens."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from jobstore.db import write_transaction
from jobstore.repo import create_job, keys
from jobstore.repo.keys import Role
from jobstore.spec import JobCreate
from tests.api.dashboard.conftest import Watch
from tests.api.dashboard.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.redis]

NAME = "<img src=x onerror=alert(1)>"
REASON = "<script>window.__pwned = 1; alert(2)</script><b id=injected>bold?</b>"
KEY_NAME = "<svg id=injected-svg onload=alert(3)>"


def assert_inert(page: Page, watch: Watch) -> None:
    assert page.locator("img").count() == 0
    assert page.locator("#injected, #injected-svg, svg[onload], main script").count() == 0
    assert page.locator("script").count() == 1  # the page's own module, nothing injected
    assert page.evaluate("window.__pwned") is None
    assert not watch.dialogs, watch.dialogs
    assert not [e for e in watch.console_errors if "Content Security Policy" in e], watch.console_errors


def test_names_and_reasons_with_markup_render_as_text(page: Page, stack: Stack, watch: Watch) -> None:
    with write_transaction(stack.harness.db) as session:
        markup_key = keys.create_key(session, name=KEY_NAME, role=Role.OPERATOR)
        secret, actor = markup_key.secret, keys.actor_label(markup_key.record)
    stack.dataset("xssB", f1=[0.5, 0.55, 0.6], epoch_seconds=0.2)
    job = stack.submit(name=NAME, data_root="xssB", epochs=3)
    forced = stack.http.post(
        f"/jobs/{job['id']}/stage",
        json={"stage": 2, "reason": REASON},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert forced.status_code == 202, forced.text
    stack.wait_state(job["id"], "succeeded")

    page.goto("/?name=onerror")
    expect(page.locator(f"tr[data-job-id='{job['id']}'] td.name a")).to_have_text(NAME)
    assert_inert(page, watch)

    page.goto(f"/ui/jobs/{job['id']}")
    expect(page.locator("#job-name")).to_have_text(NAME)
    assert page.title() == f"{NAME} · ocec-jobs"
    expect(page.locator("#stage-marks li")).to_contain_text(f"stage 2 — forced by {actor}: {REASON}")
    expect(page.locator("#timeline li[data-kind=command_requested] .ev-reason")).to_have_text(f"“{REASON}”")
    expect(page.locator("#timeline li[data-kind=command_requested] .ev-meta")).to_contain_text(KEY_NAME)
    expect(page.locator("#chart-f1 g.marker title")).to_have_text(f"stage 2 — forced by {actor}: {REASON}")
    page.click("button[data-action=fork]")
    expect(page.locator("#control-title")).to_have_text(f"Fork a new job from a checkpoint — {NAME}")
    expect(page.locator("#control-summary")).to_contain_text(f"“{NAME}-fork”")
    page.click("#control-dialog [data-close]")
    assert_inert(page, watch)

    page.goto(f"/ui/compare?ids={job['id']}")
    expect(page.locator("#chart-compare-1 .legend-item")).to_have_text(NAME)
    expect(page.locator("#compare-body a")).to_have_text(NAME)
    assert_inert(page, watch)


def test_control_and_bidi_characters_show_as_visible_escapes(page: Page, stack: Stack, watch: Watch) -> None:
    """A row stored before they were refused: a right-to-left override must not make a name read
    as another (``invoice\u202egpj.exe`` displays as ``invoiceexe.jpg``), ESC shows as ``\x1b``."""
    with write_transaction(stack.harness.db) as session:
        job = create_job(session, create=JobCreate(name="legacy", data_root="xssB")).job
        job.name = "invoice\u202egpj.exe"
        job.state, job.state_reason = "failed", "boom\x1b[2K\u2066done"
        session.add(job)
        job_id = job.id

    page.goto("/?name=invoice")
    expect(page.locator(f"tr[data-job-id='{job_id}'] td.name a")).to_have_text("invoice\\u202egpj.exe")

    page.goto(f"/ui/jobs/{job_id}")
    expect(page.locator("#job-name")).to_have_text("invoice\\u202egpj.exe")
    expect(page.locator("#st-state-reason")).to_have_text("boom\\x1b[2K\\u2066done")
    shown = page.evaluate("document.body.innerText")
    assert not {"\u202e", "\u2066", "\x1b"} & set(shown)
    assert_inert(page, watch)
