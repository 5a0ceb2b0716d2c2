"""The race's decision rule (``jobstore.halving``): pure, so every case is a table row."""

from __future__ import annotations

import pytest

from jobstore.halving import (
    Standing,
    default_rungs,
    keep_count,
    leader_cut,
    pick_winner,
    rung_cut,
    standing_at,
)


def s(name: str, f1: float | None, loss: float | None = None, **kw: object) -> Standing:
    return Standing(name, f1, loss, 5, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "fraction", "kept"), [(4, 0.5, 2), (3, 0.5, 2), (1, 0.5, 1), (5, 0.2, 1), (2, 0.01, 1)]
)
def test_keep_count_rounds_up_and_keeps_one(n: int, fraction: float, kept: int) -> None:
    assert keep_count(n, fraction) == kept


def test_the_bottom_half_by_f1_is_cut() -> None:
    cut = rung_cut([s("a", 0.7), s("b", 0.9), s("c", 0.8), s("d", 0.6)], rung=5, keep_fraction=0.5)
    assert (cut.kept, cut.cut) == (["b", "c"], ["a", "d"])
    assert "cut a, d" in cut.reason() and "b 0.9000" in cut.reason()


def test_a_tie_in_f1_goes_to_the_lower_val_loss_then_the_name() -> None:
    cut = rung_cut([s("a", 0.8, 0.5), s("b", 0.8, 0.3), s("c", 0.8, 0.3)], rung=5, keep_fraction=0.3)
    assert cut.kept == ["b"] and cut.cut == ["c", "a"]


def test_an_extended_candidate_survives_its_rung_and_no_reading_is_cut() -> None:
    cut = rung_cut(
        [s("a", 0.9), s("b", 0.5, protected=True), s("c", 0.7), s("x", None)], rung=5, keep_fraction=0.5
    )
    assert cut.kept == ["a", "c", "b"] and cut.cut == ["x"]


def test_leader_cut_keeps_only_the_best_even_if_protected() -> None:
    cut = leader_cut([s("a", 0.6, protected=True), s("b", 0.7)], rung=8)
    assert (cut.kept, cut.cut, cut.rung) == (["b"], ["a"], 8)


def test_the_winner_is_the_best_finished_and_says_why() -> None:
    verdict = pick_winner([s("guide", 0.75, 0.4), s("full", 0.91, 0.2)])
    assert verdict.winner == "full"
    assert "full: best val F1 0.9100" in verdict.reason and "vs guide 0.7500" in verdict.reason


def test_a_tie_at_the_end_is_broken_by_val_loss_and_said() -> None:
    verdict = pick_winner([s("a", 0.9, 0.3), s("b", 0.9, 0.2)])
    assert verdict.winner == "b" and "tie broken by val loss" in verdict.reason


def test_the_retention_floor_disqualifies_a_forgetful_winner() -> None:
    verdict = pick_winner(
        [s("full", 0.95, retention_f1=0.6), s("guide", 0.9, retention_f1=0.97), s("whole", 0.92)],
        retention_floor=0.9,
    )
    assert verdict.winner == "whole" and verdict.disqualified == ["full"]
    assert "below the retention floor 0.9: full" in verdict.reason


def test_no_winner_when_nothing_finished_or_all_are_below_the_floor() -> None:
    assert pick_winner([]).winner is None
    verdict = pick_winner([s("a", 0.9, retention_f1=0.1)], retention_floor=0.5)
    assert verdict.winner is None and "below the retention floor" in verdict.reason


@pytest.mark.parametrize(
    ("unfreeze", "epochs", "rungs"), [(11, 40, [18, 25]), (2, 4, [2, 3]), (3, 4, [3]), (3, 3, [])]
)
def test_default_rungs_fall_a_quarter_and_a_half_into_stage_2(
    unfreeze: int, epochs: int, rungs: list[int]
) -> None:
    assert default_rungs(unfreeze, epochs) == rungs  # never outside [unfreeze, epochs)


def test_a_rung_ranks_the_best_epoch_so_far_not_the_rungs_own() -> None:
    f1, loss = {4: 0.70, 5: 0.82, 6: 0.78}, {4: 0.5, 5: 0.3, 6: 0.4}
    dipped = standing_at("dipped", f1, loss, 6)
    assert (dipped.val_f1, dipped.val_loss, dipped.epoch) == (
        0.82,
        0.3,
        5,
    )  # one noisy epoch does not sink it
    steady = standing_at("steady", {4: 0.79, 5: 0.80, 6: 0.81}, {4: 0.4, 5: 0.4, 6: 0.4}, 6)
    assert rung_cut([steady, dipped], rung=6, keep_fraction=0.5).kept == ["dipped"]
    assert (
        standing_at("later", f1, loss, 5).val_f1 == 0.82 and standing_at("early", f1, loss, 4).val_f1 == 0.70
    )
    gone = standing_at("ended", {4: 0.9}, {4: 0.1}, 6, protected=True)  # ended before the rung: no reading
    assert gone.val_f1 is None and gone.protected
