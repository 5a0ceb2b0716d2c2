"""The jobs list in headless Chromium: filters kept in the URL, live rows without a reload, and the
new-job form showing a 422's field errors next to their fields."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.api.dashboard.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def row(page: Page, job_id: str) -> Locator:
    return page.locator(f"#jobs-body tr[data-job-id='{job_id}']")


def test_rows_arrive_live_and_filters_are_kept_in_the_url(page: Page, stack: Stack) -> None:
    stack.dataset("listB", f1=[0.5, 0.6], epoch_seconds=0.05)
    alpha = stack.submit(name="list-alpha", data_root="listB", epochs=2)

    page.goto("/?name=list-")
    expect(page.locator("#filter-name")).to_have_value("list-")
    expect(row(page, alpha["id"]).locator("a")).to_have_text("list-alpha")
    expect(row(page, alpha["id"]).locator("a")).to_have_attribute("href", f"/ui/jobs/{alpha['id']}")
    page.evaluate("window.__sameDocument = true")

    beta = stack.submit(name="list-beta", data_root="listB", epochs=2)
    expect(row(page, beta["id"])).to_be_visible()  # polled in, no reload
    stack.wait_state(beta["id"], "succeeded")
    expect(row(page, beta["id"]).locator(".badge")).to_have_text("succeeded")
    expect(row(page, beta["id"])).to_contain_text("2 / 2")

    page.fill("#filter-name", "list-beta")
    expect(page).to_have_url(re.compile(r"\?name=list-beta$"))
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    page.select_option("#filter-state", "failed")
    expect(page).to_have_url(re.compile(r"state=failed"))
    expect(page.locator("#jobs-empty")).to_be_visible()
    page.select_option("#filter-state", "succeeded")
    page.select_option("#filter-stage", "1")
    expect(page).to_have_url(re.compile(r"\?state=succeeded&stage=1&name=list-beta$"))
    expect(row(page, beta["id"])).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True

    page.reload()  # the URL alone restores the filters
    expect(page.locator("#filter-state")).to_have_value("succeeded")
    expect(page.locator("#jobs-body tr")).to_have_count(1)


def test_new_job_form_shows_field_errors_from_the_problem(page: Page, stack: Stack) -> None:
    stack.dataset("formB", f1=[0.5], epoch_seconds=0.05)
    page.goto("/")
    page.click("#new-job")
    form = page.locator("#new-job-form")
    form.locator("input[name=data_root]").fill("formB")
    form.locator("input[name=lr]").fill("5")
    form.locator("button[type=submit]").click()
    lr = form.locator(".field[data-field=lr]")
    expect(lr).to_have_class(re.compile(r"\binvalid\b"))
    expect(lr.locator(".field-error")).to_contain_text("less than or equal to 1")

    form.locator("input[name=lr]").fill("1e-4")
    form.locator("input[name=data_root]").fill("../outside")
    form.locator("button[type=submit]").click()
    data_root = form.locator(".field[data-field=data_root]")
    expect(data_root.locator(".field-error")).not_to_be_empty()
    expect(lr.locator(".field-error")).to_be_empty()  # the fixed field is clear again
    expect(form.locator(".form-error")).to_contain_text("correct the fields")
    assert page.url.endswith("/")  # nothing was created
    form.locator("[data-close]").click()
    expect(page.locator("#new-job-dialog")).to_be_hidden()
