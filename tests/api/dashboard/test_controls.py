"""Operator controls in headless Chromium: pause, resume from the best checkpoint with a new lr,
each confirmed with a stated effect and a reason and visible in the timeline; a 409 from the API is
shown from its problem body; buttons follow the job's state."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.api.dashboard.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def confirm(page: Page, reason: str) -> None:
    page.fill("#control-reason", reason)
    page.click("#control-confirm")


def test_pause_resume_and_a_refused_pause(page: Page, stack: Stack) -> None:
    stack.dataset("ctlB", f1=[0.5, 0.6, 0.65, 0.7, 0.72], epoch_seconds=0.6)
    job = stack.submit(name="ctl-job", data_root="ctlB", epochs=30, unfreeze_backbone_epoch=25)
    page.goto(f"/ui/jobs/{job['id']}")
    expect(page.locator("#job-state")).to_have_text("running", timeout=20_000)
    expect(page.locator("button[data-action=resume]")).to_be_disabled()
    stack.wait_epoch(job["id"], 2)
    expect(page.locator("#checkpoints tr").first).to_be_visible()

    page.click("button[data-action=pause]")
    expect(page.locator("#control-summary")).to_contain_text("at the end of the batch it is training")
    confirm(page, "need the GPU\nfor an hour")  # a line break in the box is sent as a space
    expect(page.locator("#job-state")).to_have_text("paused", timeout=20_000)
    asked = page.locator("#timeline li[data-kind=command_requested] .ev-reason").first
    expect(asked).to_have_text("“need the GPU for an hour”")
    paused = page.locator("#timeline li[data-kind=state_change]", has_text="running → paused")
    expect(paused).to_have_count(1)
    expect(page.locator("button[data-action=pause]")).to_be_disabled()
    expect(page.locator("button[data-action=stage]")).to_be_disabled()

    page.click("button[data-action=resume]")
    page.select_option("#control-fields select[name=from]", "best")
    page.fill("#control-fields input[name=lr]", "5e-5")
    summary = page.locator("#control-summary")
    expect(summary).to_contain_text(
        re.compile(r"continues from the best checkpoint \(after epoch \d+, stage 1, F1 0\.\d{3}\)")
    )
    expect(summary).to_contain_text("with base lr 5e-05")
    confirm(page, "push on with a lower lr")
    resumed = page.locator("#timeline li[data-kind=resume_requested]")
    expect(resumed).to_contain_text("resume requested from best")
    expect(resumed).to_contain_text("lr 5e-05")
    expect(resumed.locator(".ev-reason")).to_have_text("“push on with a lower lr”")
    expect(page.locator("#job-state")).to_have_text("running", timeout=20_000)
    expect(page.locator("#timeline li[data-kind=restored]")).to_have_count(2)

    page.click("button[data-action=pause]")  # the dialog is open when the job ends elsewhere
    cancelled = stack.http.post(f"/jobs/{job['id']}/cancel", json={"reason": "cancelled from a terminal"})
    assert cancelled.status_code in (200, 202), cancelled.text
    stack.wait_state(job["id"], "cancelled")
    confirm(page, "too late")
    error = page.locator("#control-error")
    expect(error).to_contain_text("409 Conflict with the job's state")
    expect(error).to_contain_text("only a running job can be paused; this one is cancelled")
    page.click("#control-dialog [data-close]")
    expect(page.locator("body")).to_have_attribute("data-stream-ended", "cancelled")
    expect(page.locator("button[data-action=resume]")).to_be_enabled()
    expect(page.locator("button[data-action=cancel]")).to_be_disabled()


def awaiting_job(stack: Stack, name: str) -> dict[str, object]:
    """A job whose stage-2 gate failed with policy "pause": it waits in awaiting_decision."""
    stack.dataset("pauseB", f1=[0.6, 0.7, 0.72], epoch_seconds=0.05)
    job = stack.submit(
        name=name, data_root="pauseB", epochs=6, unfreeze_backbone_epoch=3, stage2={"on_gate_fail": "pause"}
    )
    return stack.wait_state(str(job["id"]), "awaiting_decision")


def test_a_failed_gate_asks_for_a_decision(page: Page, stack: Stack) -> None:
    job = awaiting_job(stack, "ctl-gate")
    page.goto(f"/ui/jobs/{job['id']}")

    expect(page.locator("#decision-banner")).to_contain_text("Waiting for a decision")
    expect(page.locator("#decision-banner")).to_contain_text("F1 0.700 vs 0.8")
    for action, enabled in (("decide", True), ("resume", True), ("cancel", True), ("pause", False)):
        button = page.locator(f"button[data-action={action}]")
        expect(button).to_be_enabled() if enabled else expect(button).to_be_disabled()
    page.click("button[data-action=decide]")
    summary = page.locator("#control-summary")
    expect(summary).to_contain_text(
        re.compile(r"enters stage 2 at epoch \d+ \(stage-1 F1 0\.700 < gate 0\.8\)")
    )
    expect(summary).to_contain_text("the last 50 % of the backbone unfreezes at lr 5e-06")
    expect(page.locator(".field[data-field=epochs]")).to_be_hidden()
    page.select_option("#control-fields select[name=action]", "extend")
    expect(page.locator(".field[data-field=epochs]")).to_be_visible()
    expect(summary).to_contain_text("Stage 1 trains 5 more epochs")
    expect(summary).to_contain_text("the epoch budget grows from 6 to 11")
    page.select_option("#control-fields select[name=action]", "retry")
    page.fill("#control-fields input[name=lr]", "5e-5")
    expect(summary).to_contain_text("Stage 1 restarts from its entry checkpoint with base lr 5e-05")
    page.select_option("#control-fields select[name=action]", "stop")
    expect(summary).to_contain_text("as succeeded, without stage 2")
    page.click("#control-dialog [data-close]")
    stack.http.post(f"/jobs/{job['id']}/cancel", json={"reason": "test done"})


def test_proceeding_past_a_failed_gate_enters_stage_2(page: Page, stack: Stack) -> None:
    if "/jobs/{job_id}/decide" not in stack.http.get("/openapi.json").json()["paths"]:
        pytest.skip("POST /jobs/{id}/decide is not in this API yet (issue 4); the dialog is tested above")
    job = awaiting_job(stack, "ctl-proceed")
    page.goto(f"/ui/jobs/{job['id']}")
    page.click("button[data-action=decide]")
    confirm(page, "0.70 is close enough")
    expect(page.locator("#control-dialog")).to_be_hidden()
    stage = page.locator("#timeline li[data-kind=stage_change]", has_text="stage 1 → 2")
    expect(stage).to_have_count(1, timeout=20_000)
    expect(page.locator("body")).to_have_attribute("data-stream-ended", "succeeded", timeout=20_000)


def test_fork_at_the_stage_2_entry_with_other_stage_2_settings(page: Page, stack: Stack) -> None:
    stack.dataset("forkB", f1=[0.7, 0.82, 0.84, 0.86, 0.87, 0.88], epoch_seconds=0.05)
    parent = stack.submit(name="fork-parent", data_root="forkB", epochs=6, unfreeze_backbone_epoch=2)
    stack.wait_state(str(parent["id"]), "succeeded")
    page.goto(f"/ui/jobs/{parent['id']}")

    page.click("button[data-action=fork]")
    page.select_option("#control-fields select[name=from]", "stage:2")
    page.fill("#control-fields input[name=name]", "fork-deeper")
    page.fill("#control-fields input[name='stage2.unfreeze_ratio']", "0.75")
    page.fill("#control-fields input[name='stage2.lr']", "2e-5")
    summary = page.locator("#control-summary")
    expect(summary).to_contain_text("A new job “fork-deeper” starts from the stage-2 entry checkpoint")
    expect(summary).to_contain_text("the last 75 % of the backbone unfreezes at lr 2e-05")
    confirm(page, "unfreeze deeper")
    page.wait_for_url(re.compile(r"/ui/jobs/(?!" + str(parent["id"]) + r")[0-9a-f]{32}$"))
    child_id = page.url.rsplit("/", 1)[1]

    expect(page.locator("#job-name")).to_have_text("fork-deeper")
    expect(page.locator("#parent-link a")).to_have_attribute("href", f"/ui/jobs/{parent['id']}")
    expect(page.locator("body")).to_have_attribute("data-stream-ended", "succeeded", timeout=20_000)
    child = stack.status(child_id)
    assert child["spec"]["stage2"]["unfreeze_ratio"] == 0.75 and child["spec"]["stage2"]["lr"] == 2e-5
    page.click("#link-compare")
    expect(page.locator("#chart-compare-1 .legend-item")).to_have_text(["fork-parent", "fork-deeper"])
    expect(page.locator("input[name=align][value=stage2]")).to_be_checked()
    expect(page.locator("#compare-body tr").nth(1)).to_contain_text("fork at epoch")
