"""The race panel of a race's parent job page, in headless Chromium against the real stack.

A race is seeded through jobstore's own functions (the worker's part played by ``SimWorker``, the
race service's steps called in-process), not trained: stage 1 = epochs 1-2, four candidates (the
defaults), rungs at epochs 4 and 6. The panel must show what the API says (the board, the winner and
why, the budget, the decisions), draw each rung as a vertical line with a cut candidate's line ending
there, and send the operator's commands through the real API; a viewer sees no command buttons.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import read_session, write_transaction
from jobstore.kinds import CheckpointKind
from jobstore.race_service import advance
from jobstore.records import EpochRow
from jobstore.repo import keys
from jobstore.repo.keys import Role
from jobstore.repo.races import find_candidate
from jobstore.spec import JobCreate
from jobstore.states import AttemptOutcome
from tests.api.dashboard.conftest import Watch, new_tab
from tests.api.dashboard.stack import Stack
from tests.api.worker_sim import SimWorker

pytestmark = [pytest.mark.browser, pytest.mark.redis]
LOADED = 20_000  # ms for a page's first data on a busy machine
SAMPLES = 100  # training samples per epoch: the budget counts them
# val F1 by epoch: the forks from epoch 3 (after the shared stage 1), the control from epoch 1
CURVES = {
    "guide": {3: 0.60, 4: 0.61},
    "back-half-lr1": {3: 0.63, 4: 0.66},
    "whole-lr1": {3: 0.70, 4: 0.78, 5: 0.83, 6: 0.86, 7: 0.88, 8: 0.90},
    "full-finetune": {1: 0.50, 2: 0.62, 3: 0.71, 4: 0.80, 5: 0.84, 6: 0.85, 7: 0.86},  # 7: past its rung
}
RETENTION = {"table": [{"tag": "after_A", "model": "best", "domain": "A", "f1": 0.93}]}


def _epoch(worker: SimWorker, epoch: int, stage: int, f1: float) -> None:
    row = EpochRow(
        epoch=epoch, stage=stage, train_loss=0.4, val_loss=1 - f1, val_f1=f1, extra={"train_samples": SAMPLES}
    )
    with write_transaction(worker.engine) as tx:
        repo.record_epoch(tx, job_id=worker.job_id, attempt=worker.attempt, row=row)


def _step(db: Engine, parent: str) -> None:
    with write_transaction(db) as session:
        advance(session, parent, datetime.now(UTC))


def seed_race(db: Engine, name: str, *, until: int) -> str:
    """A race trained (by ``SimWorker``) up to epoch ``until``. A cut candidate's job stops after the
    epoch that follows its cut (a cancel lands at the next batch; the epoch it was in may end first)."""
    create = JobCreate.model_validate(
        {"name": name, "data_root": "raceB", "pretrain": "ocec_A.pt", "epochs": 8,
         "unfreeze_backbone_epoch": 3, "race": {"rungs": [4, 6], "budget_sample_epochs": 2400}}
    )  # fmt: skip
    with write_transaction(db) as session:
        parent = repo.create_race(session, create=create, actor="tester").parent.id
    stage1 = SimWorker(db, parent)
    stage1.claim()
    for epoch, f1 in ((1, 0.45), (2, 0.55)):
        _epoch(stage1, epoch, 1, f1)
    stage1.checkpoint(f"{parent}/last.pt", CheckpointKind.LAST, 2, val_f1=0.55)
    stage1.finish()
    _step(db, parent)  # forks the three progressive candidates
    with write_transaction(db) as session:
        board = repo.race_view(session, repo.get_race(session, parent))["leaderboard"]
    workers = {e["candidate"]: SimWorker(db, e["job_id"]) for e in board}
    for worker in workers.values():
        worker.claim()
    for epoch in range(1, until + 1):
        for candidate, worker in workers.items():
            if epoch in CURVES[candidate] and _state(db, worker.job_id) == "running":
                _epoch(worker, epoch, 1 if candidate == "full-finetune" else 2, CURVES[candidate][epoch])
            if _status(db, parent, candidate) == "cut" and _state(db, worker.job_id) == "running":
                worker.finish(AttemptOutcome.CANCELLED, "cancelled by the race")
        _step(db, parent)
    if until == 8:
        with write_transaction(db) as session:
            winner = workers["whole-lr1"]
            repo.finish_attempt(
                session, job_id=winner.job_id, attempt=winner.attempt, outcome=AttemptOutcome.COMPLETED,
                reason="done", evaluation=RETENTION,
            )  # fmt: skip
        _step(db, parent)
    return parent


def _status(db: Engine, parent: str, candidate: str) -> str:
    with read_session(db) as session:
        return str(find_candidate(repo.get_race(session, parent), candidate)["status"])


def _state(db: Engine, job_id: str) -> str:
    with read_session(db) as session:
        return str(repo.get_job(session, job_id).state)


def _last_x(path: Locator) -> float:
    """The x of a chart line's last point (its SVG path ends "... L x,y")."""
    d = str(path.get_attribute("d"))
    return float(d.rsplit("L", 1)[-1].split(",")[0])


def _rung_x(page: Page, rung: int) -> float:
    return float(
        str(page.locator(f'#chart-race g.marker[data-label^="rung {rung}:"] line').get_attribute("x1"))
    )


def test_a_finished_race_shows_its_board_winner_budget_rungs_and_chart(
    page: Page, stack: Stack, shots: Path, watch: Watch
) -> None:
    parent = seed_race(stack.harness.db, "race-ui", until=8)
    page.goto(f"/ui/jobs/{parent}")

    panel = page.locator("#race")
    expect(panel).to_be_visible(timeout=LOADED)
    expect(page.locator("#race-state")).to_have_text("finished")
    expect(page.locator("#race-winner")).to_have_text("Winner: whole-lr1")
    expect(page.locator("#race-reason")).to_contain_text("whole-lr1: best val F1 0.9000 (epoch 8)")
    rows = page.locator("#race-board tr")
    expect(rows).to_have_count(4)
    expect(rows.locator("td:nth-child(2)")).to_have_text(["winner", "cut", "cut", "cut"])
    winner = page.locator('#race-board tr[data-candidate="whole-lr1"] td')
    expect(winner.nth(3)).to_have_text("8")
    expect(winner.nth(5)).to_have_text("0.900 (epoch 8)")
    expect(winner.nth(6)).to_have_text("0.930")  # its retention F1 on domain A
    expect(page.locator('#race-board tr[data-candidate="guide"] td').nth(7)).to_contain_text("ranked 4 of 4")
    expect(page.locator("#race-budget-text")).to_have_text("1900 of 2400 sample-epochs (79 %)")
    expect(page.locator("#race-decisions > li")).to_have_count(2)
    first = page.locator('#race-decisions li[data-rung="4"]')
    expect(first).to_contain_text("kept full-finetune, whole-lr1; cut back-half-lr1, guide")
    expect(first.locator("tbody tr")).to_have_count(4)

    chart = page.locator("#chart-race")
    expect(chart.locator("path.series")).to_have_count(5)  # stage 1 and the four candidates
    expect(chart.locator('g.marker[data-label="rung 4: cut back-half-lr1, guide"]')).to_have_count(1)
    expect(chart.locator('g.marker[data-label="rung 6: cut full-finetune"]')).to_have_count(1)
    rung4, rung6 = _rung_x(page, 4), _rung_x(page, 6)
    assert _last_x(chart.locator('path[data-name="guide"]')) == pytest.approx(rung4, abs=0.1)
    assert _last_x(chart.locator('path[data-name="full-finetune"]')) == pytest.approx(rung6, abs=0.1)
    assert _last_x(chart.locator('path[data-name="whole-lr1"]')) > rung6  # the winner goes on
    expect(page.locator("#race-controls button[data-action=race-stop]")).to_be_disabled()  # it has ended
    panel.screenshot(path=str(shots / "dashboard-race.png"))

    page.locator('#race-board tr[data-candidate="whole-lr1"] a').click()
    expect(page.locator("#race-link")).to_contain_text("candidate whole-lr1 (winner) of race")
    page.locator("#race-link a").click()
    expect(page.locator("#race-winner")).to_have_text("Winner: whole-lr1", timeout=LOADED)
    page.click("#link-compare")  # the parent and its four candidates, as any job and its forks
    expect(page.locator("#compare-body tr")).to_have_count(5, timeout=LOADED)
    page.goto("/?name=race-ui")
    expect(page.locator("#jobs-body tr")).to_have_count(5, timeout=LOADED)
    expect(page.locator("#jobs-body tr", has_text="· fork")).to_have_count(4)
    assert (watch.dialogs, watch.console_errors) == ([], [])


def test_an_operator_promotes_a_candidate_a_refusal_is_shown_and_a_viewer_sees_no_buttons(
    page: Page, stack: Stack, browser: Browser, watch: Watch
) -> None:
    parent = seed_race(stack.harness.db, "race-live", until=5)  # rung 4 decided, rung 6 next
    with write_transaction(stack.harness.db) as session:
        viewer = keys.create_key(session, name="vera", role=Role.VIEWER).secret
    looker = new_tab(browser, stack, watch)
    try:
        assert looker.context.request.post("/session", data={"key": viewer}).ok
        looker.goto(f"/ui/jobs/{parent}")
        expect(looker.locator("#race-board tr")).to_have_count(4, timeout=LOADED)
        expect(looker.locator("#race-state")).to_have_text("racing")
        expect(looker.locator("#race-controls")).to_be_hidden()
        expect(looker.locator("#race button[data-action]:visible")).to_have_count(0)
    finally:
        looker.context.close()

    page.goto(f"/ui/jobs/{parent}")
    expect(page.locator("#race-winner")).to_have_text("Racing", timeout=LOADED)
    expect(page.locator("#race-reason")).to_contain_text("next rung at epoch 6")
    expect(page.locator('#chart-race g.marker[data-label="rung 6: next"]')).to_have_count(1)
    whole = page.locator('#race-board tr[data-candidate="whole-lr1"] td')
    expect(whole.nth(3)).to_have_text("5")
    board = stack.http.get(f"/jobs/{parent}/race").json()["leaderboard"]
    whole_job = next(e["job_id"] for e in board if e["candidate"] == "whole-lr1")
    _epoch(SimWorker(stack.harness.db, whole_job), 6, 2, 0.86)  # the page polls a live race
    expect(whole.nth(3)).to_have_text("6", timeout=LOADED)
    expect(whole.nth(4)).to_have_text("0.860")
    page.click("#race-controls button[data-action=race-add]")
    page.fill('#control-fields input[name="name"]', "guide")
    page.fill("#control-reason", "one more")
    page.click("#control-confirm")
    expect(page.locator("#control-error")).to_contain_text("409")
    expect(page.locator("#control-error")).to_contain_text("already has a candidate 'guide'")
    page.click("#control-dialog [data-close]")

    page.click("#race-controls button[data-action=race-promote]")
    page.select_option('#control-fields select[name="candidate"]', "full-finetune")
    expect(page.locator("#control-summary")).to_contain_text("whole-lr1 is cut (its job cancelled)")
    page.fill("#control-reason", "the control is enough")
    with page.expect_response(lambda r: r.url.endswith("/race/promote")) as answer:
        page.click("#control-confirm")
    assert answer.value.status == 202
    assert answer.value.request.header_value("Idempotency-Key")
    row = page.locator('#race-board tr[data-candidate="whole-lr1"]')
    expect(row.locator("td").nth(1)).to_have_text("cut")
    expect(row.locator("td").nth(7)).to_contain_text("full-finetune promoted by")
    expect(page.locator('#race-board tr[data-candidate="full-finetune"]')).to_contain_text("extended")
    board = stack.http.get(f"/jobs/{parent}/race").json()["leaderboard"]
    assert {e["candidate"]: e["protected"] for e in board}["full-finetune"] is True
    assert watch.dialogs == []
