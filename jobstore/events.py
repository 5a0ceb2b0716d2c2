"""The kinds of rows in the ``job_event`` audit log (``JobEvent.kind``).

Every event has a per-job ``seq`` (1, 2, 3 … with no gaps), an actor and a reason; the SSE stream
replays them in ``seq`` order. ``EPOCH`` events carry the id of the metrics row they announce, so
one cursor (the seq) replays both the audit trail and the metrics.
"""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    CREATED = "created"  # job created (or forked); to_state = queued
    STATE_CHANGE = "state_change"  # from_state -> to_state, with the reason
    STAGE_CHANGE = "stage_change"  # from_stage -> to_stage at an epoch boundary, with evidence
    GATE_CHECK = "gate_check"  # a stage gate was read (passed or not)
    EPOCH = "epoch"  # an epoch's metrics row was recorded (evidence.metric_id)
    METRICS_SUPERSEDED = "metrics_superseded"  # rows past a restored checkpoint marked superseded
    COMMAND_REQUESTED = "command_requested"
    COMMAND_DELIVERED = "command_delivered"  # handed to the worker by a heartbeat
    COMMAND_APPLIED = "command_applied"
    COMMAND_REFUSED = "command_refused"
    COMMAND_EXPIRED = "command_expired"  # the attempt ended before the command was applied
    COMMAND_MERGED = "command_merged"  # a second request for an open command: joined it, nothing stored
    DECISION = "decision"  # an operator's decision at a failed gate (proceed / extend / retry / stop)
    RESUME_REQUESTED = "resume_requested"  # operator resume: selector, checkpoint, overrides
    RESTORED = "restored"  # the worker confirmed what it restored (stage, epoch, batch, checkpoint)
    REDISPATCHED = "redispatched"  # the reaper re-sent a queued job's message (lost by the broker?)
    FORKED = "forked"  # on the parent: a child job was forked from one of its checkpoints
    NOTE = "note"  # anything else a worker wants in the audit trail
    PRUNED = "pruned"  # the retention policy removed epoch checkpoint files (evidence: paths, bytes)
    DELETED = "deleted"  # DELETE /jobs/{id}: the run folder removed; the job stays as a tombstone
    RACE_RUNG = "race_rung"  # on a race's parent: a rung's decision, every candidate's numbers
    RACE_COMMAND = "race_command"  # on a race's parent: an operator's stop / promote / extend / add
    RACE_FINISHED = "race_finished"  # on a race's parent: the winner and why (or why none)


class Actor:
    """Actor names used by jobstore itself (operators are named by the API: key name or id)."""

    SYSTEM = "system"
    REAPER = "reaper"
    RETENTION = "retention"
    RACE = "race"  # the race service (jobstore.race_service)

    @staticmethod
    def worker(name: str) -> str:
        return f"worker:{name}"
