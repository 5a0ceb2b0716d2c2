"""An operator's decision at a failed stage gate: proceed, extend, retry or stop.

A job whose gate policy is ``pause`` ends its attempt in ``awaiting_decision`` with the failed gate
read kept in ``job.gate`` (stage ``g`` it leads into, the epoch ``e`` whose boundary read it, F1 and
threshold). Each decision is a resume of the same job (``request_resume``) with a meaning:

* **proceed** — from ``last`` (the paused state); enters stage ``g`` at epoch ``e`` (one-shot ``stage``).
* **extend N** — from ``last``; stage ``g-1`` trains N more epochs: the gate epoch moves to ``e + N``
  and the budget grows by N (the epochs planned after the gate are kept); the gate is then read
  again with the job's policy (a ``pause`` asks again).
* **retry lr** — from ``stage:g-1`` (that stage's entry checkpoint); the stage restarts at ``lr``
  (stage 1: the base lr; stage 2: ``stage2.lr``); epochs past the entry are superseded.
* **stop** — from ``last``; the worker ends the run at the checkpoint: succeeded, best model
  exported (.pt + .onnx).

The decision is logged (``decision`` event: actor, reason, the gate read it answers, the plan) before
the ``resume_requested`` and state change it leads to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from jobstore.errors import InvalidResumeError
from jobstore.events import EventKind
from jobstore.gates import gate_epoch_override
from jobstore.models import Job
from jobstore.repo._base import lock_job, now_or
from jobstore.repo.events import append_event
from jobstore.repo.resume import STOP, request_resume
from jobstore.states import IllegalTransitionError, JobState


class DecisionAction(StrEnum):
    PROCEED = "proceed"
    EXTEND = "extend"
    RETRY = "retry"
    STOP = STOP


@dataclass(frozen=True)
class Decision:
    action: DecisionAction
    epochs: int | None = None  # extend: more epochs of the current stage before the gate is read again
    lr: float | None = None  # retry: the lr the stage restarts with


@dataclass(frozen=True)
class ResumePlan:
    selector: str
    overrides: dict[str, Any]


def decide(
    session: Session,
    job: Job,
    *,
    decision: Decision,
    actor: str,
    reason: str,
    now: datetime | None = None,
) -> tuple[Job, int]:
    """Apply ``decision`` to an ``awaiting_decision`` job: log it, then re-queue it (new attempt).

    Returns ``(job, attempt)`` to dispatch after commit. Raises ``IllegalTransitionError`` (the job
    is not awaiting a decision), ``InvalidResumeError`` (a missing ``epochs`` / ``lr``),
    ``NoCheckpointError`` (retry of a stage with no entry checkpoint).
    """
    now = now_or(now)
    job = lock_job(session, job.id)
    if JobState(job.state) is not JobState.AWAITING_DECISION:
        raise IllegalTransitionError(JobState(job.state), JobState.QUEUED)
    gate = dict(job.gate)
    target = int(gate.get("stage") or job.stage + 1)
    gate_epoch = int(gate.get("epoch") or job.epoch + 1)
    plan = resume_plan(job, decision, target, gate_epoch)
    summary = {
        "action": decision.action.value, "gate_stage": target, "gate_epoch": gate_epoch,
        "f1": gate.get("f1"), "threshold": gate.get("threshold"), "actor": actor, "reason": reason,
    }  # fmt: skip
    evidence = {
        **summary, "epochs": decision.epochs, "lr": decision.lr, "gate": gate,
        "from": plan.selector, "overrides": plan.overrides, "budget": [job.epochs, _budget(job, plan)],
    }  # fmt: skip
    append_event(
        session, job, EventKind.DECISION, actor=actor, reason=reason, evidence=evidence,
        epoch=job.epoch, stage=job.stage, now=now,
    )  # fmt: skip
    return request_resume(
        session, job, selector=plan.selector, overrides=plan.overrides, actor=actor,
        reason=reason or f"decision: {decision.action.value}", decision=summary, now=now,
    )  # fmt: skip


def resume_plan(job: Job, decision: Decision, target: int, gate_epoch: int) -> ResumePlan:
    """Where the decision resumes from and what it changes (see the module docstring)."""
    action = decision.action
    if action is DecisionAction.PROCEED:
        return ResumePlan("last", {"stage": target})
    if action is DecisionAction.STOP:
        return ResumePlan("last", {})
    if action is DecisionAction.EXTEND:
        if decision.epochs is None or decision.epochs < 1:
            raise InvalidResumeError("epochs: extend needs the number of epochs (>= 1) to add")
        moved = gate_epoch + decision.epochs
        return ResumePlan(
            "last", {**gate_epoch_override(target, moved), "epochs": job.epochs + decision.epochs}
        )
    if decision.lr is None:
        raise InvalidResumeError("lr: retry needs the lr to restart the stage with")
    stage = target - 1
    lr = {"lr": decision.lr} if stage == 1 else {f"stage{stage}": {"lr": decision.lr}}
    return ResumePlan(f"stage:{stage}", lr)


def _budget(job: Job, plan: ResumePlan) -> int:
    return int(plan.overrides.get("epochs", job.epochs))
