"""Evaluations in headless Chromium against the real stack (its worker scores with the fake
evaluator): run one from the evaluations page, the job page's before → after panel, and the compare
view's evaluation columns and settings diff. Moving the threshold slider must change precision,
recall, F1 and the confusion matrix; the crops must load from this server. Screenshots for the docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.api.dashboard.conftest import Watch
from tests.api.dashboard.stack import Stack
from tests.evaluation_report import make_report, write_report
from tests.worker.worker_harness import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.redis]
LOADED = 20_000  # ms for a page's first data on a busy machine (later checks keep the 5 s default)
MARKUP = "<img src=x onerror=alert(1)>.png"  # a report's text is shown as text


def _numbers(page: Page) -> tuple[str, ...]:
    ids = ("#eval-threshold", "#eval-precision", "#eval-recall", "#eval-f1", "#eval-tp", "#eval-fp")
    return tuple(page.locator(i).inner_text() for i in ids)


def _expected(report: dict[str, object], percent: int) -> tuple[str, str, str]:
    row = report["sweep"][percent]  # type: ignore[index]
    tp, fp, fn = row["tp"], row["fp"], row["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}"


def _slide(page: Page, percent: int) -> None:
    page.locator("#eval-slider").fill(str(percent))


def _crops_loaded(gallery: Locator) -> None:
    images = gallery.locator("img")
    expect(images.first).to_be_visible()
    script = "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"

    def loaded() -> list[int] | None:  # lazy images load on their own time: poll, never sleep
        widths: list[int] = images.evaluate_all(script)
        return widths if widths and all(w > 0 for w in widths) else None

    wait_for(loaded, 20, "every crop to load")


def test_run_an_evaluation_from_the_page_and_move_the_threshold(
    page: Page, stack: Stack, shots: Path
) -> None:
    stack.dataset("evalPageB")
    (stack.harness.settings.model_root / "ui_model.pt").write_bytes(b"weights")
    page.goto("/ui/evaluations")
    page.fill("#model-path", "nope.pt")
    page.fill("#data-path", "evalPageB")
    page.click("#evaluation-submit")
    expect(page.locator('.field[data-field="model.path"] .field-error')).to_contain_text("does not exist")

    page.fill("#model-path", "ui_model.pt")
    page.fill("#evaluation-name", "A on camera B")
    page.click("#evaluation-submit")
    expect(page.locator("#evaluation-state")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#evaluation-name")).to_have_text("A on camera B")
    report = make_report(root="evalPageB", model="ui_model.pt")  # what the fake evaluator wrote

    expect(page.locator("#eval-threshold")).to_have_text("0.50", timeout=LOADED)
    assert _numbers(page)[1:4] == _expected(report, 50)
    _slide(page, 20)
    expect(page.locator("#eval-threshold")).to_have_text("0.20")
    low = _numbers(page)
    assert low[1:4] == _expected(report, 20)
    assert (low[4], low[5]) == (str(report["sweep"][20]["tp"]), str(report["sweep"][20]["fp"]))
    _slide(page, 80)
    assert _numbers(page)[1:4] == _expected(report, 80) != low[1:4]
    expect(page.locator("#eval-pr")).not_to_have_attribute("data-points", "0")
    expect(page.locator("#eval-roc g.marker")).to_have_count(1)
    _crops_loaded(page.locator("#eval-gallery"))
    page.screenshot(path=str(shots / "dashboard-evaluation.png"), full_page=True)

    page.goto("/ui/evaluations")
    expect(page.locator("#evaluations-body tr").first).to_contain_text("A on camera B")


def _job_with_reports(stack: Stack, name: str, lr: float, *, skills: tuple[float, float] | None) -> str:
    job = stack.submit(name=name, data_root="evalJobB", epochs=2, unfreeze_backbone_epoch=2, lr=lr)
    stack.wait_state(job["id"], "succeeded")
    if skills is not None:
        folder = stack.harness.settings.runs_root / job["id"] / "evaluation"
        for tag, skill, seed in (("before_B", skills[0], 1), ("after_B", skills[1], 2)):
            report = make_report(seed=seed, skill=skill)
            report["worst"][0]["source"] = MARKUP
            write_report(folder / tag, report)
    return str(job["id"])


def test_the_job_page_panel_and_the_compare_columns(
    page: Page, stack: Stack, shots: Path, watch: Watch
) -> None:
    stack.dataset("evalJobB", f1=[0.7, 0.8], epoch_seconds=0.05)
    evaluated = _job_with_reports(stack, "eval-panel", 1e-3, skills=(0.1, 0.35))
    plain = _job_with_reports(stack, "eval-none", 5e-4, skills=None)

    page.goto(f"/ui/jobs/{evaluated}")
    panel = page.locator("#evaluation")
    expect(panel).to_be_visible(timeout=LOADED)
    expect(page.locator("#eval-before-after tbody tr")).to_have_count(2)
    expect(page.locator("#eval-before-after tbody tr").first).to_contain_text("before_B")
    expect(page.locator("#eval-report")).to_have_value("after_B")
    after = make_report(seed=2, skill=0.35)
    assert _numbers(page)[1:4] == _expected(after, 50)
    _slide(page, 35)
    assert _numbers(page)[1:4] == _expected(after, 35)
    expect(page.locator("#eval-gallery small").first).to_have_text(MARKUP)
    expect(page.locator("#eval-gallery img")).to_have_count(len(after["worst"]))
    page.select_option("#eval-report", "before_B")
    _slide(page, 35)
    assert _numbers(page)[1:4] == _expected(make_report(seed=1, skill=0.1), 35)
    _crops_loaded(page.locator("#eval-gallery"))
    panel.screenshot(path=str(shots / "dashboard-job-evaluation.png"))

    page.goto(f"/ui/jobs/{plain}")
    expect(page.locator("#job-state")).to_have_text("succeeded", timeout=LOADED)
    expect(panel).to_be_hidden()  # no report: no panel

    page.goto(f"/ui/compare?ids={evaluated},{plain}")
    rows = page.locator("#compare-eval-body tr")
    expect(rows).to_have_count(2, timeout=LOADED)
    before, after_f1 = make_report(seed=1, skill=0.1)["at_0_5"]["f1"], after["at_0_5"]["f1"]
    expect(rows.nth(0).locator("td").nth(1)).to_have_text(f"{before:.3f}")
    expect(rows.nth(0).locator("td").nth(3)).to_have_text(f"{after_f1 - before:+.3f}")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("\N{EN DASH}")  # no evaluation
    expect(page.locator("#compare-eval-note")).to_contain_text("1 job(s) have no evaluation")
    diff = page.locator("#compare-diff-body tr")
    lr_row = page.locator('#compare-diff-body tr[data-setting="lr"] td')
    expect(lr_row).to_have_text(["lr", "0.001", "0.0005"])
    assert diff.count() == 1, diff.all_inner_texts()  # nothing else differs
    page.locator("#compare-eval").screenshot(path=str(shots / "dashboard-compare-evaluation.png"))
    assert (watch.dialogs, watch.console_errors) == ([], [])
