"""What a stage means for the default OCEC model (32 channels, 4 blocks, cosface), and assertions.

Trainable parameters per stage (docs/engine.md, "Units"): stage 1 trains the live head only
(``margin_head.weight``, 2 x 64 = 128); stage 2 adds the smallest suffix of backbone units holding
half its elements — ``features.2`` (2,528) and ``features.3`` (4,928); stage 3 (ratio 1.0) the whole
backbone (11,264, stem included). The dead OCEC ``head.*`` never trains.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

HEAD = 128
STAGE2_TRAINABLE = HEAD + 2_528 + 4_928
FULL_TRAINABLE = HEAD + 11_264
TRAINABLE = {1: HEAD, 2: STAGE2_TRAINABLE, 3: FULL_TRAINABLE}
FROZEN_UNITS = {1: ["stem", "features.0", "features.1", "features.2", "features.3"],
                2: ["stem", "features.0", "features.1"], 3: []}  # fmt: skip
PROBLEM_JSON = "application/problem+json"


def assert_stage_row(
    row: dict[str, Any], stage: int, lrs: dict[str, float], trainable: int | None = None
) -> None:
    """A metrics row trained in ``stage``: its named param groups at ``lrs``, exactly its trainable set."""
    where = f"epoch {row['epoch']}"
    assert row["stage"] == stage, where
    assert row["lrs"] == pytest.approx(lrs, rel=1e-9), where
    assert row["trainable_params"] == (trainable or TRAINABLE[stage]), where
    if trainable is None:
        assert row["extra"]["frozen_units"] == FROZEN_UNITS[stage], where


def assert_problem(response: httpx.Response, status: int, **members: Any) -> dict[str, Any]:
    """An RFC 9457 problem with this status and these members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    for name, value in members.items():
        assert problem[name] == value, (name, problem)
    return problem


def command_events(events: list[dict[str, Any]], command_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["command_id"] == command_id and e["kind"].startswith("command_")]


def transitions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stage changes that changed the stage (not the start, not an lr change on resume)."""
    return [
        e for e in events
        if e["kind"] == "stage_change" and e["from_stage"] is not None and e["from_stage"] != e["to_stage"]
    ]  # fmt: skip


def fates(events: list[dict[str, Any]], command_id: str) -> list[str]:
    """How a command ended: its applied / refused / expired events (exactly one when it is settled)."""
    final = {"command_applied", "command_refused", "command_expired"}
    return [e["kind"] for e in command_events(events, command_id) if e["kind"] in final]
