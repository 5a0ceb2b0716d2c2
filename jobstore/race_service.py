"""The race service: one pass (``advance_races``) moves every live race one step (docs/race.md).

Run every ``reaper_interval_seconds`` next to the reaper (``worker.reaper``: a worker's companion,
``ocec-jobs up``'s reaper child, or ``python -m worker.reaper``). For each live race, under its
parent job's row lock (so several hosts may run it at once and each change happens once):

1. **Stage 1 done.** The parent succeeded: every waiting candidate is forked from its last stage-1
   checkpoint and dispatched. It failed or was cancelled: the race ends (cut, then settled).
2. **Rungs.** When every candidate still in play has a metrics row at the next rung epoch (or has
   ended before it), ``jobstore.halving.rung_cut`` ranks them; the bottom ones are cancelled through
   the normal command path, and a ``race_rung`` event on the parent records every candidate's numbers.
3. **Budget.** Once the sample-epochs used reach the race's budget, only the leader goes on.
4. **Result.** When no candidate is in play, ``jobstore.halving.pick_winner`` names the winner; the
   parent's best checkpoint, ONNX and best F1 become the winner's, and a ``race_finished`` event says why.

Sample-epochs: the training samples of every epoch a race's job trained itself (the parent's stage 1
once; a fork's inherited stage-1 epochs not again), from each metrics row (``extra.train_samples``,
else samples per second x training seconds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from jobstore.db import TransactionFactory
from jobstore.events import Actor, EventKind
from jobstore.halving import Cut, Standing, leader_cut, pick_winner, rung_cut, standing_at
from jobstore.models import EpochMetric, Job, Race
from jobstore.repo.events import append_event
from jobstore.repo.races import (
    IN_PLAY,
    LIVE_RACE,
    RaceChange,
    RaceState,
    Send,
    Status,
    cut_candidate,
    lock_race,
    metric_at,
    readings_until,
    start_candidate,
)
from jobstore.spec import RaceSpec
from jobstore.states import TERMINAL, JobState
from jobstore.tasknames import Dispatch

log = logging.getLogger(__name__)


@dataclass
class RaceReport:
    advanced: int = 0
    errors: int = 0
    dispatched: list[Send] = field(default_factory=list)


def advance_races(session_factory: TransactionFactory, *, now: datetime, dispatch: Dispatch) -> RaceReport:
    """One pass over the live races; jobs it creates are dispatched after each race's commit."""
    report = RaceReport()
    with session_factory() as session:
        live = [s.value for s in LIVE_RACE]
        ids = list(session.exec(select(Race.job_id).where(col(Race.state).in_(live))).all())
    for job_id in ids:
        try:
            with session_factory() as session:
                sends = advance(session, job_id, now)
            report.advanced += 1
        except Exception:  # one bad race must not stop the others; it is retried next pass
            report.errors += 1
            log.exception("race %s: step failed", job_id)
            continue
        for job, attempt in sends:  # a lost send is re-sent by the reaper (the job is marked dispatched)
            try:
                dispatch(job, attempt)
                report.dispatched.append((job, attempt))
            except Exception:
                log.exception("race %s: dispatch of %s failed", job_id, job)
    return report


def advance(session: Session, job_id: str, now: datetime) -> list[Send]:
    """One step of one race (see the module docstring); returns the jobs to dispatch."""
    race, parent = lock_race(session, job_id)
    if race.state not in LIVE_RACE:
        return []
    change = RaceChange(race, parent)
    spec = RaceSpec.model_validate(race.plan["race"])
    if race.state == RaceState.STAGE1:
        _after_stage1(session, change, now)
    if race.state == RaceState.RACING:
        _sync(session, race)
        race.sample_epochs = sample_epochs_used(session, race)
        _rungs(session, change, spec, now)
        _budget(session, change, spec, now)
        _settle(session, change, spec, now)
    race.updated_at = now
    session.add(race)
    return change.sends


def _after_stage1(session: Session, change: RaceChange, now: datetime) -> None:
    state = JobState(change.parent.state)
    if state not in TERMINAL:
        return
    change.race.state = RaceState.RACING.value
    if state is JobState.SUCCEEDED:
        for entry in change.race.candidates:
            if entry["status"] == Status.WAITING:
                start_candidate(session, change, entry["name"], actor=Actor.RACE, now=now)
        return
    why = f"stage 1 {state}: {change.parent.state_reason}"
    change.race.plan = {**change.race.plan, "stopped": state is JobState.CANCELLED, "stage1_ended": why}
    for entry in change.race.candidates:
        if entry["status"] in IN_PLAY:
            cut_candidate(session, change, entry["name"], actor=Actor.RACE, reason=why, now=now)


def _sync(session: Session, race: Race) -> None:
    """A candidate whose job ended on its own: finished (succeeded) or failed (failed, cancelled)."""
    for entry in race.candidates:
        job = session.get(Job, entry["job_id"]) if entry["job_id"] else None
        if entry["status"] != Status.RUNNING or job is None or JobState(job.state) not in TERMINAL:
            continue
        done = job.state == JobState.SUCCEEDED
        status = Status.FINISHED if done else Status.FAILED
        reason = entry["reason"] if done else f"its job {job.state}: {job.state_reason}"
        race.candidates = [
            {**c, "status": status.value, "reason": reason} if c["name"] == entry["name"] else c
            for c in race.candidates
        ]


def _rungs(session: Session, change: RaceChange, spec: RaceSpec, now: datetime) -> None:
    race = change.race
    while race.next_rung < len(spec.rung_epochs):
        rung = spec.rung_epochs[race.next_rung]
        pool = _standings_at(session, race, rung)
        if pool is None:
            return  # someone has not reached the rung yet
        decision = rung_cut(pool, rung=rung, keep_fraction=spec.keep_fraction)
        _apply(session, change, decision, now, budget=False)
        race.next_rung += 1


def _budget(session: Session, change: RaceChange, spec: RaceSpec, now: datetime) -> None:
    race = change.race
    total = spec.budget_sample_epochs
    running = [_job(session, e) for e in race.candidates if e["status"] == Status.RUNNING]
    if total is None or race.sample_epochs < total or len(running) < 2 or race.plan.get("budget_spent"):
        return
    epoch = min(job.epoch for job in running if job is not None)
    pool = _standings_at(session, race, epoch, wait=False) or []
    _apply(session, change, leader_cut(pool, rung=epoch), now, budget=True)
    race.plan = {**race.plan, "budget_spent": epoch}


def _standings_at(session: Session, race: Race, epoch: int, *, wait: bool = True) -> list[Standing] | None:
    """Every candidate in play with its reading at ``epoch``; None while one is still short of it."""
    pool = []
    for entry in race.candidates:
        if entry["status"] not in (Status.RUNNING, Status.FINISHED):
            continue
        job = _job(session, entry)
        f1, loss = readings_until(session, job.id, epoch)
        if epoch in f1:
            pool.append(standing_at(entry["name"], f1, loss, epoch, protected=entry["protected"]))
        elif wait and JobState(job.state) not in TERMINAL:
            return None
    return pool


def _apply(session: Session, change: RaceChange, decision: Cut, now: datetime, *, budget: bool) -> None:
    race = change.race
    cause = "the budget is spent; only the leader goes on" if budget else decision.reason()
    for place, standing in enumerate(decision.ranking, start=1):
        if standing.name in decision.cut:
            why = f"race rung epoch {decision.rung}: ranked {place} of {len(decision.ranking)}; {cause}"
            cut_candidate(session, change, standing.name, actor=Actor.RACE, reason=why, now=now)
    race.candidates = [
        {**c, "protected": False} if c["name"] in decision.kept else c for c in race.candidates
    ]
    record = {
        "rung": decision.rung, "budget": budget, "kept": decision.kept, "cut": decision.cut,
        "standings": [s.numbers() for s in decision.ranking], "at": now.isoformat(),
        "sample_epochs": race.sample_epochs,
    }  # fmt: skip
    race.rungs = [*race.rungs, record]
    append_event(session, change.parent, EventKind.RACE_RUNG, actor=Actor.RACE, reason=cause, evidence=record,
                 now=now)  # fmt: skip


def _settle(session: Session, change: RaceChange, spec: RaceSpec, now: datetime) -> None:
    race, parent = change.race, change.parent
    if any(entry["status"] in IN_PLAY for entry in race.candidates):
        return
    finished = [_final_standing(session, e) for e in race.candidates if e["status"] == Status.FINISHED]
    verdict = pick_winner(finished, retention_floor=spec.retention_floor)
    evidence: dict[str, Any] = {
        "winner": verdict.winner, "standings": [s.numbers() for s in verdict.ranking],
        "disqualified": verdict.disqualified, "sample_epochs": race.sample_epochs,
    }  # fmt: skip
    prefix = " ".join(filter(None, [race.plan.get("stage1_ended", ""), race.reason]))
    if verdict.winner is not None:
        entry = next(e for e in race.candidates if e["name"] == verdict.winner)
        won = _job(session, entry)
        parent.best_checkpoint, parent.onnx_path = won.best_checkpoint, won.onnx_path
        parent.best_f1, parent.best_epoch = won.best_f1, won.best_epoch
        session.add(parent)
        race.candidates = [
            {**c, "status": Status.WINNER.value} if c["name"] == verdict.winner else c
            for c in race.candidates
        ]
        race.state, race.winner = RaceState.FINISHED.value, verdict.winner
        evidence |= {"job_id": won.id, "best_checkpoint": won.best_checkpoint, "onnx": won.onnx_path}
    else:
        stopped = bool(race.plan.get("stopped"))
        race.state = (RaceState.STOPPED if stopped else RaceState.FAILED).value
    race.reason = f"{prefix}; {verdict.reason}" if prefix else verdict.reason
    race.finished_at = now
    append_event(session, parent, EventKind.RACE_FINISHED, actor=Actor.RACE, reason=race.reason,
                 evidence=evidence, now=now)  # fmt: skip


def _final_standing(session: Session, entry: dict[str, Any]) -> Standing:
    job = _job(session, entry)
    row = metric_at(session, job.id, job.best_epoch) if job.best_epoch else None
    return Standing(entry["name"], job.best_f1, row.val_loss if row else None, job.best_epoch,
                    retention_f1=retention_f1(job))  # fmt: skip


def retention_f1(job: Job) -> float | None:
    """F1 of the job's best model on the source domain A (``job.result["evaluation"]``, written by the
    evaluation lane's worker step when the job has ``retention_data_root``); None when not evaluated."""
    result = getattr(job, "result", None) or {}
    rows = (result.get("evaluation") or {}).get("table") or []
    for row in rows:
        if row.get("domain") == "A" and row.get("model") == "best" and row.get("f1") is not None:
            return float(row["f1"])
    return None


def sample_epochs_used(session: Session, race: Race) -> int:
    """Training samples over every epoch the race's jobs trained themselves (see the module docstring)."""
    starts = {race.job_id: 0}
    for entry in race.candidates:
        if entry["job_id"]:
            starts[entry["job_id"]] = 0 if entry["full_finetune"] else int(race.plan["stage1_epochs"])
    rows = session.exec(
        select(EpochMetric).where(
            col(EpochMetric.job_id).in_(list(starts)), col(EpochMetric.superseded).is_(False)
        )
    ).all()
    return sum(samples_of(row) for row in rows if row.epoch > starts[row.job_id])


def samples_of(row: EpochMetric) -> int:
    given = row.extra.get("train_samples")
    if isinstance(given, int | float):
        return int(given)
    seconds = row.extra.get("train_seconds") or row.epoch_seconds or 0.0
    return round((row.samples_per_sec or 0.0) * float(seconds))


def _job(session: Session, entry: dict[str, Any]) -> Job:
    job = session.get(Job, entry["job_id"])
    if job is None:
        raise LookupError(f"candidate {entry['name']}: job {entry['job_id']} is gone")
    return job
