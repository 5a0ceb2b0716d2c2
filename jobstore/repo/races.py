"""Races of stage-2 recipes (docs/race.md): create one, start its candidates, take operator commands.

A race is a parent job that runs stage 1 once (the spec's epochs 1 .. U-1, head only), a ``race`` row,
and one child job per candidate: a progressive candidate is a fork of the parent's last stage-1
checkpoint with its stage-2 overrides (the gate at U set to ``proceed``: the race judges the recipe);
a full fine-tune is a fresh job from model A, started at once. The children are ordinary queued jobs
(``parent_job_id`` is the parent), so any free worker takes them. ``jobstore.race_service`` advances
races; every change here and there locks the parent job's row first, so they apply one at a time.

Operator commands (stop, promote, extend, add) are logged as ``race_command`` events on the parent,
with actor, reason and the ``Idempotency-Key``; a repeat of a key returns the race as it is, the same
key with another request is an ``IdempotencyConflictError``. Cancelling a candidate goes through the
normal command path (``request_cancel``), so the child's own log says who cut it and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from jobstore.errors import IdempotencyConflictError, InvalidCommandError, RaceConflictError
from jobstore.events import EventKind
from jobstore.models import EpochMetric, Job, Race
from jobstore.repo._base import lock_job, now_or
from jobstore.repo.commands import request_cancel
from jobstore.repo.events import append_event
from jobstore.repo.jobs import create_job, get_job, request_hash
from jobstore.repo.resume import fork_job, request_resume
from jobstore.spec import JobCreate, RaceCandidate, RaceSpec, spec_dict
from jobstore.states import TERMINAL, JobState

Send = tuple[str, int]  # (job id, attempt) to dispatch after commit


class RaceState(StrEnum):
    STAGE1 = "stage1"  # the parent trains the shared stage 1
    RACING = "racing"  # candidates train; rungs are being decided
    FINISHED = "finished"  # a winner; the parent's best checkpoint and ONNX are the winner's
    STOPPED = "stopped"  # an operator stopped it (or its stage 1 was cancelled) with no finished winner
    FAILED = "failed"  # stage 1 failed, or no candidate finished


LIVE_RACE = frozenset({RaceState.STAGE1, RaceState.RACING})


class Status(StrEnum):
    """A candidate's place in the race."""

    WAITING = "waiting"  # for stage 1 (a progressive candidate has no job yet)
    RUNNING = "running"  # its job is in play (queued, running, or re-queued after a lost worker)
    FINISHED = "finished"  # its job succeeded
    CUT = "cut"  # cancelled by a rung, the budget or an operator's promote
    FAILED = "failed"  # its job failed or was cancelled by someone else
    WINNER = "winner"


# Still to train (or training): what a rung waits for and what a stop cancels.
IN_PLAY = (Status.RUNNING, Status.WAITING)
# A candidate still in the race: it can be promoted, and a promotion cuts the others in it.
CAN_WIN = (*IN_PLAY, Status.FINISHED)
# What an extend accepts: one in play survives its next rung, a cut one is resumed.
EXTENDABLE = (*IN_PLAY, Status.CUT)


@dataclass
class RaceChange:
    race: Race
    parent: Job
    created: bool = True  # False: a replay of an Idempotency-Key
    sends: list[Send] = field(default_factory=list)


# ---- create ---------------------------------------------------------------------------------------------
def create_race(
    session: Session,
    *,
    create: JobCreate,
    owner: str = "",
    idempotency_key: str | None = None,
    actor: str,
    max_queued: int | None = None,
    now: datetime | None = None,
) -> RaceChange:
    """The parent (stage 1), the race row and every full-fine-tune candidate (started at once)."""
    now = now_or(now)
    race_spec = create.race
    if race_spec is None or create.unfreeze_backbone_epoch is None:
        raise ValueError("create_race needs a JobCreate with a race section and a stage-2 gate epoch")
    stage1_epochs = create.unfreeze_backbone_epoch - 1
    stage1 = create.model_copy(update={"epochs": stage1_epochs, "unfreeze_backbone_epoch": None})
    result = create_job(
        session, create=stage1, owner=owner, idempotency_key=idempotency_key, actor=actor,
        max_queued=max_queued, request={"race_of": create.model_dump(mode="json")}, now=now,
    )  # fmt: skip
    parent = result.job
    if not result.created:
        race = session.get(Race, parent.id)
        if race is None:  # the key named a plain job, not a race
            raise IdempotencyConflictError(idempotency_key or "", parent.id)
        return RaceChange(race, parent, created=False)
    plan = {
        "race": race_spec.model_dump(mode="json"),
        "spec": spec_dict(create),
        "stage1_epochs": stage1_epochs,
        "name": create.name,
    }
    race = Race(job_id=parent.id, plan=plan, created_at=now, updated_at=now)
    session.add(race)
    change = RaceChange(race, parent, sends=[(parent.id, parent.attempt)])
    for candidate in race_spec.candidates:
        _add_candidate(session, change, candidate, actor=actor, now=now)
    append_event(
        session, parent, EventKind.RACE_COMMAND, actor=actor, reason="race created: stage 1 runs here",
        evidence={"kind": "create", "race": plan["race"], "stage1_epochs": stage1_epochs}, now=now,
    )  # fmt: skip
    return change


def _add_candidate(
    session: Session, change: RaceChange, candidate: RaceCandidate, *, actor: str, now: datetime
) -> None:
    entry = {**candidate.model_dump(mode="json"), "job_id": None, "status": Status.WAITING.value,
             "protected": False, "reason": "", "actor": actor}  # fmt: skip
    change.race.candidates = [*change.race.candidates, entry]
    if candidate.full_finetune or change.race.state == RaceState.RACING:
        start_candidate(session, change, candidate.name, actor=actor, now=now)


def start_candidate(session: Session, change: RaceChange, name: str, *, actor: str, now: datetime) -> None:
    """Create ``name``'s job: a fork of the stage-1 checkpoint, or a full fine-tune from model A."""
    race, parent = change.race, change.parent
    entry = find_candidate(race, name)
    plan_spec = dict(race.plan["spec"])
    job_name = f"{race.plan['name']}-{name}"[:200]
    reason = f"race {parent.id} candidate {name}"
    if entry["full_finetune"]:
        spec = {**plan_spec, "freeze_backbone": False, "unfreeze_backbone_epoch": None}
        create = JobCreate.model_validate({**spec, "name": job_name, "priority": parent.priority})
        child = create_job(
            session, create=create, owner=parent.owner, actor=actor, parent_job_id=parent.id,
            fork_from={"race": parent.id, "candidate": name}, now=now,
        ).job  # fmt: skip
    else:
        overrides = {
            "epochs": plan_spec["epochs"],
            "unfreeze_backbone_epoch": plan_spec["unfreeze_backbone_epoch"],
            "stage2": entry["stage2"],
        }
        child = fork_job(
            session, parent_id=parent.id, selector="last", overrides=overrides, name=job_name,
            owner=parent.owner, actor=actor, reason=reason, now=now,
        ).job  # fmt: skip
    _update(race, name, job_id=child.id, status=Status.RUNNING.value)
    change.sends.append((child.id, child.attempt))


# ---- reading --------------------------------------------------------------------------------------------
def find_candidate(race: Race, name: str) -> dict[str, Any]:
    for entry in race.candidates:
        if entry["name"] == name:
            return entry
    names = [c["name"] for c in race.candidates]
    raise RaceConflictError(race.job_id, f"no candidate {name!r} in this race; it has {names}")


def _update(race: Race, name: str, **changes: Any) -> None:
    """Change one candidate (a new list: the JSON column is saved only when reassigned)."""
    race.candidates = [{**c, **changes} if c["name"] == name else dict(c) for c in race.candidates]


def lock_race(session: Session, job_id: str) -> tuple[Race, Job]:
    """The race of parent ``job_id`` with the parent's row locked (``RaceConflictError``: not a race)."""
    parent = lock_job(session, job_id)
    race = session.get(Race, job_id, populate_existing=True)
    if race is None:
        raise RaceConflictError(job_id, f"job {job_id} is not a race")
    return race, parent


def get_race(session: Session, job_id: str) -> Race:
    get_job(session, job_id)
    race = session.get(Race, job_id)
    if race is None:
        raise RaceConflictError(job_id, f"job {job_id} is not a race")
    return race


def metric_at(session: Session, job_id: str, epoch: int) -> EpochMetric | None:
    query = select(EpochMetric).where(
        EpochMetric.job_id == job_id, EpochMetric.epoch == epoch, col(EpochMetric.superseded).is_(False)
    )
    return session.exec(query).first()


def readings_until(session: Session, job_id: str, epoch: int) -> tuple[dict[int, float], dict[int, float]]:
    """A job's live val F1 and val loss per epoch up to ``epoch`` (what a rung ranks it by)."""
    query = select(EpochMetric.epoch, EpochMetric.val_f1, EpochMetric.val_loss).where(
        EpochMetric.job_id == job_id, EpochMetric.epoch <= epoch, col(EpochMetric.superseded).is_(False)
    )
    rows = session.exec(query).all()
    f1 = {e: v for e, v, _ in rows if v is not None}  # a row without a reading is no reading
    return f1, {e: loss for e, _, loss in rows if loss is not None and e in f1}


def race_view(session: Session, race: Race) -> dict[str, Any]:
    """The race's status: state, winner and why, budget, rung decisions and the leaderboard."""
    board = []
    for entry in race.candidates:
        job = session.get(Job, entry["job_id"]) if entry["job_id"] else None
        board.append(
            {
                "candidate": entry["name"], "job_id": entry["job_id"], "status": entry["status"],
                "full_finetune": entry["full_finetune"], "stage2": entry["stage2"],
                "protected": entry["protected"], "reason": entry["reason"],
                "state": job.state if job else None, "epoch": job.epoch if job else None,
                "val_f1": job.latest_metrics.get("val_f1") if job else None,
                "best_f1": job.best_f1 if job else None, "best_epoch": job.best_epoch if job else None,
            }
        )  # fmt: skip
    board.sort(key=lambda row: (row["status"] != Status.WINNER, -(row["best_f1"] or -1.0), row["candidate"]))
    spec = RaceSpec.model_validate(race.plan["race"])
    budget = {"used_sample_epochs": race.sample_epochs, "total_sample_epochs": spec.budget_sample_epochs}
    rungs = spec.rung_epochs
    return {
        "job_id": race.job_id, "state": race.state, "winner": race.winner, "reason": race.reason,
        "budget": budget,
        "rungs": rungs, "keep_fraction": spec.keep_fraction, "retention_floor": spec.retention_floor,
        "next_rung": rungs[race.next_rung] if race.next_rung < len(rungs) else None,
        "decisions": race.rungs, "leaderboard": board, "stage1_epochs": race.plan["stage1_epochs"],
        "created_at": race.created_at, "updated_at": race.updated_at, "finished_at": race.finished_at,
    }  # fmt: skip


# ---- operator commands ------------------------------------------------------------------------------------
class RaceCommand(StrEnum):
    STOP = "stop"
    PROMOTE = "promote"
    EXTEND = "extend"
    ADD = "add"


def command_race(
    session: Session,
    *,
    job_id: str,
    kind: RaceCommand,
    actor: str,
    reason: str,
    params: Mapping[str, Any] | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> RaceChange:
    """Apply an operator's command to a live race, logged on the parent (see the module docstring)."""
    now = now_or(now)
    params = dict(params or {})
    race, parent = lock_race(session, job_id)
    digest = request_hash({"kind": kind.value, "params": params})
    if key is not None and key in race.keys:
        if race.keys[key]["hash"] != digest:
            raise IdempotencyConflictError(key, job_id)
        return RaceChange(race, parent, created=False)
    if race.state not in LIVE_RACE:
        raise RaceConflictError(job_id, f"the race is {race.state}; {kind.value} needs a live race")
    change = RaceChange(race, parent)
    _COMMANDS[kind](session, change, params, actor, reason or f"operator {kind.value}", now)
    event = append_event(
        session, parent, EventKind.RACE_COMMAND, actor=actor, reason=reason or kind.value,
        evidence={"kind": kind.value, "params": params, "command_key": key}, now=now,
    )  # fmt: skip
    if key is not None:
        race.keys = {**race.keys, key: {"kind": kind.value, "hash": digest, "seq": event.seq}}
    race.updated_at = now
    session.add(race)
    return change


def cut_candidate(
    session: Session, change: RaceChange, name: str, *, actor: str, reason: str, now: datetime
) -> None:
    """Take ``name`` out of the race: its job is cancelled through the normal command path."""
    entry = find_candidate(change.race, name)
    job = session.get(Job, entry["job_id"]) if entry["job_id"] else None
    if job is not None and JobState(job.state) not in TERMINAL:
        request_cancel(session, job_id=job.id, actor=actor, reason=reason, now=now)
    _update(change.race, name, status=Status.CUT.value, reason=reason, protected=False)


def _stop(
    session: Session, change: RaceChange, params: dict[str, Any], actor: str, reason: str, now: datetime
) -> None:
    for entry in change.race.candidates:
        if entry["status"] in IN_PLAY:
            cut_candidate(
                session, change, entry["name"], actor=actor, reason=f"race stopped: {reason}", now=now
            )
    if JobState(change.parent.state) not in TERMINAL:
        request_cancel(
            session, job_id=change.parent.id, actor=actor, reason=f"race stopped: {reason}", now=now
        )
    change.race.state = RaceState.RACING.value  # the service settles it: a finished winner, or stopped
    change.race.reason = f"stopped by {actor}: {reason}"
    change.race.plan = {**change.race.plan, "stopped": True}


def _promote(
    session: Session, change: RaceChange, params: dict[str, Any], actor: str, reason: str, now: datetime
) -> None:
    name = str(params["candidate"])
    entry = find_candidate(change.race, name)
    if entry["status"] not in CAN_WIN:
        raise RaceConflictError(change.race.job_id, f"candidate {name} is {entry['status']}; it cannot win")
    for other in change.race.candidates:
        if other["name"] != name and other["status"] in CAN_WIN:
            why = f"{name} promoted by {actor}: {reason}"
            cut_candidate(session, change, other["name"], actor=actor, reason=why, now=now)
    _update(change.race, name, protected=True, reason=f"promoted by {actor}: {reason}")
    change.race.plan = {**change.race.plan, "promoted": name}


def _extend(
    session: Session, change: RaceChange, params: dict[str, Any], actor: str, reason: str, now: datetime
) -> None:
    name = str(params["candidate"])
    entry = find_candidate(change.race, name)
    why = f"extended by {actor}: {reason}"
    if entry["status"] == Status.CUT and entry["job_id"]:
        job = get_job(session, entry["job_id"])
        if JobState(job.state) is not JobState.CANCELLED:
            raise RaceConflictError(
                change.race.job_id, f"candidate {name}'s job is {job.state}, not resumable"
            )
        job, attempt = request_resume(session, job, selector="last", actor=actor, reason=why, now=now)
        change.sends.append((job.id, attempt))
    elif entry["status"] not in IN_PLAY:
        raise RaceConflictError(
            change.race.job_id, f"candidate {name} is {entry['status']}; nothing to extend"
        )
    _update(change.race, name, status=Status.RUNNING.value if entry["job_id"] else Status.WAITING.value,
            protected=True, reason=why)  # fmt: skip


def _add(
    session: Session, change: RaceChange, params: dict[str, Any], actor: str, reason: str, now: datetime
) -> None:
    try:
        candidate = RaceCandidate.model_validate(params)
    except ValidationError as exc:
        raise InvalidCommandError(f"not a race candidate: {exc}") from exc
    if any(c["name"] == candidate.name for c in change.race.candidates):
        raise RaceConflictError(change.race.job_id, f"the race already has a candidate {candidate.name!r}")
    if candidate.full_finetune and not change.race.plan["spec"].get("pretrain"):
        raise RaceConflictError(change.race.job_id, "a full fine-tune starts from model A: the race has none")
    _add_candidate(session, change, candidate, actor=actor, now=now)


_COMMANDS = {
    RaceCommand.STOP: _stop,
    RaceCommand.PROMOTE: _promote,
    RaceCommand.EXTEND: _extend,
    RaceCommand.ADD: _add,
}
