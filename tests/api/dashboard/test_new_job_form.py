"""The new-job form in headless Chromium: every spec field, presets, all mistakes at once before
any request, and a dataset uploaded from the dialog picked for the job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from api.job_form import job_form
from tests.api.dashboard.stack import Stack
from tests.api.uploads.data_files import folder_entries, zip_of

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def open_form(page: Page) -> Locator:
    page.goto("/")
    page.click("#new-job")
    return page.locator("#new-job-form")


def job_count(stack: Stack) -> int:
    return len(stack.http.get("/jobs", params={"limit": 200}).json()["data"])


def test_every_field_is_there_advanced_ones_folded_and_presets_fill_them(page: Page, shots: Path) -> None:
    form = open_form(page)
    names = form.locator("[name]").evaluate_all("els => els.map(e => e.name)")
    assert sorted(names) == sorted(f.name for f in job_form().all_fields())
    advanced = form.locator("details.advanced")
    expect(advanced).not_to_have_attribute("open", re.compile(".*"))
    expect(form.locator("input[name=image_size]")).to_be_hidden()  # folded
    expect(form.locator("input[name='stage2.lr']")).to_be_visible()  # the basics are not
    expect(form.locator("input[name=unfreeze_backbone_epoch]")).to_have_value("11")  # the guide's
    page.screenshot(path=str(shots / "dashboard-new-job.png"))

    form.locator("#preset").select_option("full")
    expect(form.locator("input[name=freeze_backbone]")).not_to_be_checked()
    expect(form.locator("#preset-why")).to_contain_text("Every layer")
    form.locator("#preset").select_option("recommended")
    expect(form.locator("input[name=freeze_backbone]")).to_be_checked()
    expect(form.locator("input[name='stage2.lr_factor']")).to_have_value("1")
    expect(form.locator("select[name='stage2.on_gate_fail']")).to_have_value("proceed")
    race = form.locator("input[name='race.keep_fraction']")  # disabled with its section's fieldset
    expect(race).to_be_disabled()
    form.locator("#preset").select_option("race")
    expect(form.locator("[data-section-switch=race]")).to_be_checked()
    expect(race).to_be_enabled()
    expect(race).to_be_visible()  # "Advanced" unfolded to show what the preset switched on
    form.locator("#preset").select_option("guide")
    expect(race).to_be_disabled()


def test_all_mistakes_show_at_once_and_nothing_is_sent(page: Page, stack: Stack) -> None:
    before = job_count(stack)
    form = open_form(page)
    form.locator("input[name=lr]").fill("5")
    form.locator("input[name=epochs]").fill("0")
    form.locator("input[name=seed]").fill("1.5")
    summary = form.locator("details.advanced summary")
    summary.click()
    form.locator("input[name=image_size]").fill("big")  # a field under "Advanced", folded again
    summary.click()
    form.locator("button[type=submit]").click()  # and data_root left empty

    wanted = {
        "lr": "less than or equal to 1",
        "epochs": "greater than or equal to 1",
        "seed": "valid integer",
        "image_size": "should match pattern",
        "data_root": "Field required",
    }
    for name, message in wanted.items():
        field = form.locator(f".field[data-field='{name}']")
        expect(field).to_have_class(re.compile(r"\binvalid\b"))
        expect(field.locator(".field-error")).to_contain_text(message)
    expect(form.locator("details.advanced")).to_have_attribute("open", "")  # unfolded to show it
    expect(form.locator(".form-error")).to_contain_text("5 fields need a correction")
    assert job_count(stack) == before

    # the server's own check across fields still answers next to its field
    stack.dataset("formAllB", f1=[0.5], epoch_seconds=0.05)
    fixes = {"lr": "1e-4", "epochs": "3", "seed": "7", "image_size": "32x64", "data_root": "formAllB"}
    for name, value in fixes.items():
        form.locator(f"[name='{name}']").fill(value)
    form.locator("input[name=unfreeze_backbone_epoch]").fill("5")
    form.locator("button[type=submit]").click()
    unfreeze = form.locator(".field[data-field=unfreeze_backbone_epoch]")
    expect(unfreeze.locator(".field-error")).to_contain_text("must not exceed epochs")
    expect(form.locator(".field.invalid")).to_have_count(1)
    assert job_count(stack) == before


def test_a_dataset_uploaded_from_the_dialog_is_picked_for_the_job(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    archive = zip_of(tmp_path / "eyes-form.zip", folder_entries(per_class=3))
    form = open_form(page)
    form.locator("input[data-upload=datasets]").set_input_files(str(archive))
    data_root = form.locator("input[name=data_root]")
    expect(data_root).to_have_value(re.compile(r"^uploads/[0-9a-f]+$"))
    path = data_root.input_value()
    expect(form.locator(f"#pick-datasets option[value='{path}']")).to_have_count(1)  # now pickable

    form.locator("input[name=name]").fill("from-an-upload")
    form.locator("#preset").select_option("full")
    form.locator("button[type=submit]").click()
    # A clean submit leaves for the job's page at once, so the form (and its error line) is gone:
    # reaching the page is the proof that nothing was refused.
    page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    spec = stack.status(job_id)["spec"]
    assert (spec["data_root"], spec["freeze_backbone"], spec["stage2"]["lr_factor"]) == (path, False, 0.05)
    stack.http.post(f"/jobs/{job_id}/cancel")  # no fake-engine script in it: not for running
