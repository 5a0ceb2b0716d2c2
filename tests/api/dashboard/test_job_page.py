"""The job page in headless Chromium against the real stack: submit through the form, watch the
charts grow over the SSE stream, force stage 2 through the control, see the boundary and the event,
and the stream's `end` settle the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from jobstore.db import write_transaction
from jobstore.models import Job
from tests.api.dashboard.conftest import Watch
from tests.api.dashboard.proxy import CuttableProxy
from tests.api.dashboard.stack import Stack
from tests.worker.worker_harness import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.redis]

JOB_URL = re.compile(r"/ui/jobs/([0-9a-f]{32})$")


def points(page: Page, chart: str) -> int:
    return int(page.locator(chart).get_attribute("data-points") or 0)


def wait_points(page: Page, chart: str, more_than: int, timeout: float = 20.0) -> int:
    """Poll the chart's drawn-point count (page.wait_for_function would need 'unsafe-eval')."""
    return wait_for(
        lambda: (n := points(page, chart)) > more_than and n, timeout, f"{chart} > {more_than} points"
    )


def submit_through_form(page: Page, name: str, data_root: str, epochs: int, unfreeze: int) -> str:
    page.goto("/")
    page.click("#new-job")
    form = page.locator("#new-job-form")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=data_root]").fill(data_root)
    form.locator("input[name=epochs]").fill(str(epochs))
    form.locator("input[name=unfreeze_backbone_epoch]").fill(str(unfreeze))
    form.locator("input[name=batch_size]").fill("64")
    form.locator("button[type=submit]").click()
    page.wait_for_url(JOB_URL)
    match = JOB_URL.search(page.url)
    assert match is not None
    return match.group(1)


def test_watch_a_job_grow_force_stage_2_and_see_it_finish(
    page: Page, stack: Stack, watch: Watch, shots: Path
) -> None:
    # stage-1 F1 stays under the 0.80 gate: only the operator's force brings stage 2
    stack.dataset("slowB", f1=[0.55, 0.61, 0.66, 0.7, 0.72, 0.74, 0.75, 0.76], epoch_seconds=0.9)
    job_id = submit_through_form(page, "ui-progressive", "slowB", epochs=8, unfreeze=6)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    expect(page.locator("#job-name")).to_have_text("ui-progressive")
    expect(page.locator("#job-state")).to_have_text("running", timeout=20_000)
    first = wait_points(page, "#chart-loss", 0)
    assert wait_points(page, "#chart-loss", first) > first  # the chart grew without a reload

    force = page.locator("button[data-action=stage]")
    expect(force).to_be_enabled()
    force.click()
    dialog = page.locator("#control-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#control-summary")).to_contain_text(
        "Stage 2 starts at the first epoch boundary after you confirm (after epoch"
    )
    expect(page.locator("#control-summary")).to_contain_text(
        "the last 50 % of the backbone unfreezes at lr 5e-06"
    )
    page.locator("#control-confirm").click()  # no reason yet: refused in the dialog
    expect(page.locator(".field[data-field=reason] .field-error")).to_contain_text("reason is required")
    page.fill("#control-reason", "stage-1 F1 is good enough")
    page.locator("#control-confirm").click()
    expect(dialog).to_be_hidden()

    timeline = page.locator("#timeline")
    expect(timeline.locator("li[data-kind=command_requested]").first).to_contain_text(
        "force stage 2 requested"
    )
    stage_event = timeline.locator("li[data-kind=stage_change]", has_text="stage 1 → 2")
    expect(stage_event).to_have_count(1, timeout=20_000)
    expect(stage_event).to_contain_text("stage-1 F1 is good enough")
    expect(page.locator("#stage-marks li")).to_have_text(
        re.compile(rf"epoch \d+ · stage 2 — forced by {re.escape(stack.actor)}: stage-1 F1 is good enough")
    )
    expect(page.locator("#chart-f1 g.marker")).to_have_count(1)
    expect(page.locator("#chart-f1")).to_have_attribute("data-markers", "1")
    expect(page.locator("#job-stage")).to_have_text("stage 2")
    expect(page.locator("#chart-lr .legend")).to_contain_text("backbone")  # a second param group

    expect(page.locator("body")).to_have_attribute("data-stream-ended", "succeeded", timeout=30_000)
    expect(page.locator("#job-state")).to_have_text("succeeded")
    expect(page.locator("#st-epoch")).to_have_text("8 / 8")
    expect(page.locator("#artifacts a", has_text="best.pt")).to_have_attribute(
        "href", f"/jobs/{job_id}/artifacts/best.pt"
    )
    expect(page.locator("#artifacts a", has_text="best.onnx")).to_be_visible()
    expect(page.locator("#chart-loss")).to_have_attribute("data-points", "16")
    assert page.evaluate("window.__sameDocument") is True
    for button in ("stage", "pause", "cancel", "resume"):
        expect(page.locator(f"button[data-action={button}]")).to_be_disabled()
    page.locator("#toast").evaluate("el => { el.hidden = true; }")  # keep the picture clean
    page.screenshot(path=str(shots / "dashboard-job.png"), full_page=True)
    assert not watch.dialogs


def test_a_cut_stream_resumes_with_last_event_id_and_loses_nothing(page: Page, stack: Stack) -> None:
    stack.dataset("cutB", f1=[0.5, 0.6, 0.65, 0.7, 0.72, 0.74], epoch_seconds=0.7)
    job_id = stack.submit(name="ui-reconnect", data_root="cutB", epochs=6)["id"]
    host, port = stack.url.removeprefix("http://").split(":")
    proxy = CuttableProxy((host, int(port)))
    requests: list[Request] = []
    page.on("request", lambda r: "/stream" in r.url and requests.append(r))
    try:
        page.goto(f"{proxy.url}/ui/jobs/{job_id}")
        stack.wait_epoch(job_id, 2)
        wait_points(page, "#chart-loss", 3)
        proxy.cut()  # the open EventSource (and any other connection) drops mid-job
        expect(page.locator("body")).to_have_attribute("data-stream-ended", "succeeded", timeout=30_000)
    finally:
        proxy.close()

    first, again, *_ = [(r.url, r.header_value("last-event-id")) for r in requests]
    assert first[1] is None
    assert again[0] == first[0]  # EventSource itself reconnected, to the same URL ...
    assert again[1] is not None and int(again[1]) > int(first[0].rsplit("=", 1)[1])  # ... after what it had
    expect(page.locator("#chart-loss")).to_have_attribute("data-points", "12")
    shown = sorted(
        int(s) for s in page.locator("#timeline li").evaluate_all("els => els.map(e => e.dataset.seq)")
    )
    events = stack.http.get(f"/jobs/{job_id}/events", params={"limit": 500}).json()["data"]
    assert shown == [e["seq"] for e in events if e["kind"] != "epoch"]  # nothing lost, nothing twice


def test_a_job_no_epoch_of_which_beats_model_a_says_so(page: Page, stack: Stack) -> None:
    stack.dataset("worseB", f1=[0.5, 0.55, 0.58], baseline_f1=0.7, epoch_seconds=0.05)
    job = stack.submit(name="no-better-than-a", data_root="worseB", epochs=3)
    done = stack.wait_state(job["id"], "succeeded", "failed")
    assert done["baseline"] == {"f1": 0.7, "val_loss": pytest.approx(0.35), "beaten": False}
    page.goto(f"/ui/jobs/{job['id']}")
    baseline = page.locator("#st-baseline")
    expect(baseline).to_have_text("no epoch beats model A (F1 0.700 before epoch 1)")
    expect(baseline).to_have_class(re.compile(r"\bwarn\b"))


def test_a_running_job_whose_heartbeat_stopped_shows_a_warning_not_running(page: Page, stack: Stack) -> None:
    job_id = stack.harness.create(name="silent", epochs=5, dispatch=False)
    now = datetime.now(UTC)
    with write_transaction(stack.harness.db) as session:  # its worker died without a word
        job = session.get(Job, job_id)
        assert job is not None
        job.state, job.lease_owner = "running", "gone@host"
        job.heartbeat_at, job.lease_expires_at = now - timedelta(seconds=60), now + timedelta(hours=1)
    try:
        page.goto(f"/ui/jobs/{job_id}")

        expect(page.locator("#job-state")).to_have_text("running? no heartbeat")
        expect(page.locator("#st-state")).to_have_text("running? no heartbeat")
        expect(page.locator("#stale-banner")).to_be_visible()
        expect(page.locator("#stale-banner")).to_contain_text("No heartbeat for 1 min")
    finally:
        with write_transaction(stack.harness.db) as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.state = "cancelled"


def test_a_deleted_job_page_says_it_was_deleted(page: Page, stack: Stack) -> None:
    stack.dataset("shortB", epoch_seconds=0.01)
    job = stack.submit(name="to-delete", data_root="shortB", epochs=2)
    stack.wait_state(job["id"], "succeeded")
    assert stack.http.delete(f"/jobs/{job['id']}").status_code == 200

    page.goto(f"/ui/jobs/{job['id']}")

    expect(page.locator("#deleted-banner")).to_be_visible()
    expect(page.locator("#deleted-banner")).to_contain_text("Deleted")
    expect(page.locator("#artifacts")).to_have_text("no artifacts yet")  # no link to a file that is gone
    expect(page.locator("#checkpoints")).to_contain_text("pruned")
