"""Compare in headless Chromium: two jobs whose gates opened at different epochs, picked on the
list, drawn on one chart by epoch and by epoch since stage-2 entry; screenshots for the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.api.dashboard.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def test_pick_two_jobs_on_the_list_and_compare_them(page: Page, stack: Stack, shots: Path) -> None:
    stack.dataset("gateEarly", f1=[0.6, 0.82, 0.85, 0.87, 0.88, 0.89], epoch_seconds=0.05)
    stack.dataset("gateLate", f1=[0.55, 0.65, 0.75, 0.81, 0.84, 0.86], epoch_seconds=0.05)
    stack.dataset("slowC", f1=[0.5, 0.6, 0.7, 0.75], epoch_seconds=1.0)
    early = stack.submit(name="cmp-early-gate", data_root="gateEarly", epochs=6, unfreeze_backbone_epoch=2)
    late = stack.submit(name="cmp-late-gate", data_root="gateLate", epochs=6, unfreeze_backbone_epoch=2)
    for job in (early, late):
        stack.wait_state(job["id"], "succeeded")
    running = stack.submit(name="cmp-long-run", data_root="slowC", epochs=40, unfreeze_backbone_epoch=20)
    stack.wait_epoch(running["id"], 1)

    page.goto("/")
    expect(page.locator(f"tr[data-job-id='{running['id']}'] .badge")).to_have_text("running")
    page.locator("#toast").evaluate("el => { el.hidden = true; }")
    page.screenshot(path=str(shots / "dashboard-list.png"))
    for job in (early, late):
        page.locator(f"input[data-job-id='{job['id']}']").check()
    expect(page.locator("#compare-selected")).to_be_enabled()
    page.click("#compare-selected")
    expect(page).to_have_url(re.compile(r"/ui/compare\?ids="))

    chart = page.locator("#chart-compare-1")
    expect(chart.locator(".legend-item")).to_have_text(["cmp-early-gate", "cmp-late-gate"])
    expect(chart).to_have_attribute("data-points", "12")
    expect(chart).to_have_attribute("data-markers", "2")  # each job's stage-2 entry
    expect(page.locator("#chart-compare-2 .chart-title")).to_have_text("val loss by epoch")
    rows = page.locator("#compare-body tr")
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("3")  # gate read on epoch 2's F1 0.82
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("5")
    expect(rows.nth(0).locator("td").nth(5)).to_have_text(re.compile(r"^\+0\.\d{3}$"))

    page.check("input[name=align][value=stage2]")
    expect(page).to_have_url(re.compile(r"align=stage2"))
    expect(chart.locator(".chart-title")).to_have_text("val F1 by epochs since stage-2 entry")
    expect(chart).to_have_attribute("data-markers", "1")
    expect(chart.locator("g.marker")).to_have_attribute("data-label", "stage-2 entry")
    expect(chart).to_have_attribute("data-points", "12")
    page.screenshot(path=str(shots / "dashboard-compare.png"))

    page.reload()  # the URL keeps the jobs, the metrics and the alignment
    expect(page.locator("input[name=align][value=stage2]")).to_be_checked()
    expect(chart).to_have_attribute("data-points", "12")
    stack.http.post(f"/jobs/{running['id']}/cancel", json={"reason": "test done"})
    stack.wait_state(running["id"], "cancelled")
