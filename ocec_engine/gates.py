"""Gate decisions at an epoch boundary: a pure function of the gates, stage state, epoch and the
last F1. Torch-free, so the tests' fake engine reads its gates with this same function.

The gate into stage N+1 is read at the boundary before epoch ``e`` when

* the plan is progressive and stage N+1 is configured with a gate epoch (``stage_plan.gate_epoch``:
  stage 2: U = ``unfreeze_backbone_epoch``, no automatic stage 2 without it; stage 3:
  ``stage3.epoch`` or any);
* ``e >= gate epoch``;
* the F1 belongs to the current stage: at least one epoch was trained in it, or it is the run's
  starting stage (then the start-of-run evaluation counts, so U = 1 can open on the pretrain's F1)
  -- except for stage 3, which is entered only after at least one stage-2 epoch.

It passes when that F1 (the previous epoch's margin-free val F1, threshold 0.5) >= ``gate_f1``.
When it fails, the stage's ``on_gate_fail`` decides: keep-trying waits while ``e <= deadline``
(default: the last epoch) and stops after -- for the optional stage 3 it skips the stage instead
and the run trains on to its budget, ending completed with a note; pause pauses once per gate
epoch (a run resumed after that pause without a forced stage keeps trying, unless the gate epoch
was moved past the pause — an extended stage — which re-arms it); proceed enters anyway; stop
stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ocec_engine.config import GateFailPolicy
from ocec_engine.hooks import GateCheck, StageTrigger
from ocec_engine.stage_plan import Gate, StageState, gate_deadline, is_optional


class GateAction(StrEnum):
    ENTER = "enter"
    WAIT = "wait"
    PROCEED = "proceed"
    PAUSE = "pause"
    STOP = "stop"
    SKIP = "skip"  # an optional stage's keep-trying deadline passed: train on without it


@dataclass(frozen=True)
class GateDecision:
    action: GateAction
    check: GateCheck


def read_gate(
    gates: Mapping[int, Gate], state: StageState, epoch: int, epochs: int, last_f1: float | None
) -> GateDecision | None:
    """The decision at the boundary before ``epoch``, or None when no gate is read there.

    ``gates``: ``StagePlan.gates`` (or ``stage_plan.config_gates``), empty for a full fine-tune.
    """
    if last_f1 is None:
        return None
    target = state.stage + 1
    spec = gates.get(target)
    if spec is None:
        return None
    if target == 2 and spec.epoch is None:
        return None  # no unfreeze epoch: stage 2 only when forced
    if epoch < (spec.epoch or 1):
        return None
    if epoch <= state.entered_epoch and (state.trigger is not StageTrigger.START or is_optional(target)):
        return None  # no F1 measured in this stage yet (stage 3 always waits for one stage-2 epoch)
    gate = spec.settings
    policy = gate.on_gate_fail
    past = epoch > gate_deadline(gate, epochs) + 1
    if is_optional(target) and policy is GateFailPolicy.KEEP_TRYING and past:
        return None  # given up at the first read past the deadline
    passed = last_f1 >= gate.gate_f1
    evidence = f"val F1 {last_f1:.4f} {'>=' if passed else '<'} {gate.gate_f1:g}"
    if passed:
        return _decide(
            GateAction.ENTER, epoch, target, last_f1, gate.gate_f1, True, policy, f"{evidence}: enter"
        )
    if policy is GateFailPolicy.PAUSE and _paused_before(state, target, spec.epoch or 1):
        policy = GateFailPolicy.KEEP_TRYING  # the operator resumed after the pause: keep trying
        evidence += " (resumed after a gate pause: keep trying)"
    if policy is GateFailPolicy.KEEP_TRYING:
        deadline = gate_deadline(gate, epochs)
        if epoch > deadline:
            action = GateAction.SKIP if is_optional(target) else GateAction.STOP
            then = f"optional stage {target} skipped, training goes on" if is_optional(target) else "stop"
            reason = f"{evidence}; deadline epoch {deadline} passed: {then}"
            return _decide(action, epoch, target, last_f1, gate.gate_f1, False, gate.on_gate_fail, reason)
        reason = f"{evidence}; keep trying until epoch {deadline}"
        return _decide(
            GateAction.WAIT, epoch, target, last_f1, gate.gate_f1, False, gate.on_gate_fail, reason
        )
    action = {
        GateFailPolicy.PAUSE: GateAction.PAUSE,
        GateFailPolicy.PROCEED: GateAction.PROCEED,
        GateFailPolicy.STOP: GateAction.STOP,
    }[policy]
    reason = f"{evidence}; policy {policy.value}: {action.value}"
    return _decide(action, epoch, target, last_f1, gate.gate_f1, False, policy, reason)


def _paused_before(state: StageState, target: int, gate_epoch: int) -> bool:
    """This gate already paused the run, and its gate epoch has not moved past that pause since."""
    if target not in state.paused_gates:
        return False
    paused_at = state.paused_at.get(target)
    return paused_at is None or gate_epoch <= paused_at


def _decide(
    action: GateAction,
    epoch: int,
    target: int,
    f1: float,
    threshold: float,
    passed: bool,
    policy: GateFailPolicy,
    reason: str,
) -> GateDecision:
    check = GateCheck(
        epoch=epoch,
        stage=target,
        f1=f1,
        threshold=threshold,
        passed=passed,
        policy=policy.value,
        action=action.value,
        reason=f"stage {target} gate at epoch {epoch}: {reason}",
    )
    return GateDecision(action, check)
