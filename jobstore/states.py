"""Job states and the table of allowed transitions (pure data, no database).

Every state change in the system goes through ``check_transition``; an illegal one raises
``IllegalTransitionError``, which the API answers with 409. Adding a rule means adding a row here,
not an ``if`` somewhere else.
"""

from __future__ import annotations

from enum import StrEnum

from jobstore.errors import JobStoreError


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    AWAITING_DECISION = "awaiting_decision"
    INTERRUPTED = "interrupted"  # worker lost; re-queued automatically within the retry budget
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
RESUMABLE: frozenset[JobState] = frozenset(
    {
        JobState.PAUSED,
        JobState.AWAITING_DECISION,
        JobState.INTERRUPTED,
        JobState.FAILED,
        JobState.CANCELLED,
    }
)

# from-state -> the states it may move to. Resume of a stopped job = back to QUEUED.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.PAUSED,
            JobState.AWAITING_DECISION,
            JobState.INTERRUPTED,
            JobState.QUEUED,  # preempted by a clean worker shutdown: back in the queue at once
        }
    ),
    JobState.PAUSED: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    JobState.AWAITING_DECISION: frozenset({JobState.QUEUED, JobState.CANCELLED, JobState.SUCCEEDED}),
    JobState.INTERRUPTED: frozenset({JobState.QUEUED, JobState.FAILED, JobState.CANCELLED}),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
    JobState.SUCCEEDED: frozenset(),
}


class AttemptOutcome(StrEnum):
    """How one attempt ended. The first six mirror ``ocec_engine.hooks.Outcome`` value for value."""

    COMPLETED = "completed"  # epoch budget reached
    STOPPED = "stopped"  # gate policy stop / keep-trying deadline; the best model is kept
    PAUSED = "paused"
    CANCELLED = "cancelled"
    AWAITING_DECISION = "awaiting_decision"  # gate failed with policy "pause"
    PREEMPTED = "preempted"  # clean worker shutdown: checkpointed, back in the queue at once
    FAILED = "failed"  # an error in the job itself (bad data, NaN loss...): never retried automatically
    LOST = "lost"  # set by the reaper: the lease expired (worker killed, host gone)


# Where a job goes when an attempt ends with each outcome.
OUTCOME_STATE: dict[AttemptOutcome, JobState] = {
    AttemptOutcome.COMPLETED: JobState.SUCCEEDED,
    AttemptOutcome.STOPPED: JobState.SUCCEEDED,
    AttemptOutcome.PAUSED: JobState.PAUSED,
    AttemptOutcome.CANCELLED: JobState.CANCELLED,
    AttemptOutcome.AWAITING_DECISION: JobState.AWAITING_DECISION,
    AttemptOutcome.PREEMPTED: JobState.QUEUED,
    AttemptOutcome.FAILED: JobState.FAILED,
    AttemptOutcome.LOST: JobState.INTERRUPTED,
}


class IllegalTransitionError(JobStoreError):
    code = "illegal-transition"

    def __init__(self, current: JobState, target: JobState) -> None:
        super().__init__(f"a {current} job cannot become {target}")
        self.current = current
        self.target = target


def can_transition(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: JobState, target: JobState) -> None:
    if not can_transition(current, target):
        raise IllegalTransitionError(current, target)
