"""Operator commands through the hooks: force a stage (once, at the next epoch boundary), pause,
cancel, preemption — each confirmed with a CommandResult, and surviving an interrupt."""

from __future__ import annotations

from pathlib import Path

from loop_helpers import RecordingHooks, config, force, load_state, pause

from ocec_engine.config import TrainConfig
from ocec_engine.hooks import CommandKind, Outcome, StageTrigger
from ocec_engine.loop import train


def _cfg(data: Path, out: Path, **kw: object) -> TrainConfig:
    return config(data, out, unfreeze_backbone_epoch=None, **kw)  # stage 2 only when forced


def test_force_at_a_boundary_applies_once_even_if_sent_twice(tiny_parquet: Path, tmp_path: Path) -> None:
    # the same command redelivered at every poll, plus a second command asking for the same stage
    hooks = RecordingHooks(script={(2, 0): [force(2, "a"), force(2, "b")]}, repeat=True)
    train(_cfg(tiny_parquet, tmp_path, epochs=3), hooks)
    assert [(e.to_stage, e.epoch, e.trigger, e.command_id) for e in hooks.transitions()] == [
        (2, 2, StageTrigger.FORCED, "a")
    ]
    assert [(r.command_id, r.applied) for r in hooks.results] == [("a", True), ("b", False)]
    assert "already in stage 2" in hooks.results[1].reason
    assert [m.stage for m in hooks.epochs] == [1, 2, 2]
    assert hooks.results[0].evidence["val_f1"] == hooks.epochs[0].val_f1  # the F1 at that moment


def test_force_sent_mid_epoch_waits_for_the_next_boundary(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks(script={(1, 1): [force(2)]})
    train(_cfg(tiny_parquet, tmp_path, epochs=2), hooks)
    assert [m.stage for m in hooks.epochs] == [1, 2]
    assert [(e.to_stage, e.epoch) for e in hooks.transitions()] == [(2, 2)]
    assert hooks.results[0].epoch == 2
    assert hooks.calls.index("command:c1:True") < hooks.calls.index("epoch_end:2")


def test_force_refusals(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks(script={(2, 0): [force(3, "too-far"), force(1, "behind"), force("x", "junk")]})  # type: ignore[arg-type]
    train(_cfg(tiny_parquet, tmp_path, epochs=2), hooks)
    assert hooks.transitions() == []
    refusals = {r.command_id: r.reason for r in hooks.results if not r.applied}
    assert "not configured" in refusals["too-far"]
    assert "not ahead" in refusals["behind"]
    assert "integer" in refusals["junk"]


def test_full_finetune_refuses_stages(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks(script={(2, 0): [force(2)]})
    train(_cfg(tiny_parquet, tmp_path, epochs=2, freeze_backbone=False), hooks)
    assert [(r.applied, "no stages" in r.reason) for r in hooks.results] == [(False, True)]


def test_pause_cancel_and_preemption_write_an_interrupt_checkpoint(
    tiny_parquet: Path, tmp_path: Path
) -> None:
    cases = [
        ({(1, 2): [pause("p")]}, None, Outcome.PAUSED, (1, 2)),
        ({(2, 0): [pause("c", CommandKind.CANCEL)]}, None, Outcome.CANCELLED, (2, 0)),
        ({}, (2, 1), Outcome.PREEMPTED, (2, 1)),
    ]
    for i, (script, stop_at, outcome, (epoch, batch)) in enumerate(cases):
        out = tmp_path / str(i)
        hooks = RecordingHooks(script=dict(script), stop_at=stop_at)
        result = train(_cfg(tiny_parquet, out, epochs=3), hooks)
        assert result.outcome is outcome
        assert result.last_checkpoint == str(out / "interrupt.pt")
        assert result.onnx_path is None
        state = load_state(out / "interrupt.pt")
        assert (state["position"]["epoch"], state["position"]["batch"]) == (epoch, batch)
        assert hooks.checkpoints[-1].kind.value == "interrupt" and hooks.checkpoints[-1].batch == batch
        assert [r.applied for r in hooks.results] == ([True] if script else [])
        assert hooks.calls[-1] == "train_end"


def test_a_queued_force_survives_a_preemption(tiny_parquet: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_parquet, tmp_path, epochs=3)
    first = RecordingHooks(script={(1, 1): [force(2, "f")]}, stop_at=(1, 2))
    assert train(cfg, first).outcome is Outcome.PREEMPTED
    assert first.results == []  # the force is still queued, not answered
    assert load_state(tmp_path / "interrupt.pt")["stage_state"]["pending_commands"][0]["command_id"] == "f"
    # the service re-delivers the unanswered command after the resume: it must not apply twice
    second = RecordingHooks(script={(1, 2): [force(2, "f")], (2, 0): [force(2, "f")]})
    train(TrainConfig.from_dict({**cfg.to_dict(), "resume": str(tmp_path / "interrupt.pt")}), second)
    assert [(e.to_stage, e.epoch) for e in second.transitions()] == [(2, 2)]
    assert [(r.command_id, r.applied) for r in second.results] == [("f", True)]
    assert [m.stage for m in second.epochs] == [1, 2, 2]


def test_a_new_run_from_the_checkpoint_does_not_inherit_its_queued_force(
    tiny_parquet: Path, tmp_path: Path
) -> None:
    cfg = _cfg(tiny_parquet, tmp_path / "parent", epochs=3)
    train(cfg, RecordingHooks(script={(1, 1): [force(2, "f")]}, stop_at=(1, 2)))
    child = {**cfg.to_dict(), "output_dir": str(tmp_path / "child"), "resume_commands": False,
             "resume": str(tmp_path / "parent" / "interrupt.pt")}  # fmt: skip
    hooks = RecordingHooks()
    train(TrainConfig.from_dict(child), hooks)
    assert hooks.transitions() == [] and hooks.results == []  # the parent's command stays the parent's
    assert hooks.info is not None and any("not carried over" in note for note in hooks.info.notes)


def test_a_pause_or_cancel_refuses_a_queued_force(tiny_parquet: Path, tmp_path: Path) -> None:
    # the service expires what a paused attempt leaves open: the force must not come back on resume
    for i, kind in enumerate((CommandKind.PAUSE, CommandKind.CANCEL)):
        out = tmp_path / str(i)
        hooks = RecordingHooks(script={(1, 1): [force(2, "f")], (1, 2): [pause("p", kind)]})
        train(_cfg(tiny_parquet, out, epochs=3), hooks)
        assert [(r.command_id, r.applied) for r in hooks.results] == [("f", False), ("p", True)]
        assert "before the next epoch boundary" in hooks.results[0].reason
        assert load_state(out / "interrupt.pt")["stage_state"]["pending_commands"] == []


def test_commands_left_at_the_end_are_refused(tiny_parquet: Path, tmp_path: Path) -> None:
    hooks = RecordingHooks(script={(2, 1): [force(2, "late")]})
    result = train(_cfg(tiny_parquet, tmp_path, epochs=2), hooks)
    assert result.outcome is Outcome.COMPLETED
    assert [(r.command_id, r.applied) for r in hooks.results] == [("late", False)]
    assert "ended" in hooks.results[0].reason
