"""Domain errors raised by jobstore. Each carries a stable ``code`` the API maps to a status.

The API answers: ``not-found`` 404; ``illegal-transition``, ``idempotency-conflict``,
``job-not-running``, ``no-checkpoint``, ``checkpoint-pruned``, ``delete-refused``,
``job-deleted``, ``race-conflict`` 409; ``invalid-cursor``, ``invalid-selector``,
``invalid-resume``, ``invalid-command`` 422; ``quota-exceeded`` 429. ``fenced-out`` never reaches a
client: it tells a worker that its attempt is over and it must stop writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar


class JobStoreError(Exception):
    code: ClassVar[str] = "jobstore-error"


class JobNotFoundError(JobStoreError):
    code = "not-found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class IdempotencyConflictError(JobStoreError):
    """The same Idempotency-Key (or command key) was sent before with a different body."""

    code = "idempotency-conflict"

    def __init__(self, key: str, existing_id: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used with a different request")
        self.key = key
        self.existing_id = existing_id


class QuotaExceededError(JobStoreError):
    code = "quota-exceeded"

    def __init__(self, owner: str, limit: int) -> None:
        super().__init__(f"owner {owner!r} already has {limit} queued jobs (the limit)")
        self.owner = owner
        self.limit = limit


class FencedOutError(JobStoreError):
    """A worker write whose attempt no longer owns the job (stale, duplicate, or job not running)."""

    code = "fenced-out"

    def __init__(self, job_id: str, attempt: int, current_attempt: int | None, state: str | None) -> None:
        super().__init__(
            f"attempt {attempt} of job {job_id} is fenced out "
            f"(job attempt is {current_attempt}, state {state})"
        )
        self.job_id = job_id
        self.attempt = attempt
        self.current_attempt = current_attempt
        self.state = state


class JobNotRunningError(JobStoreError):
    """A command for a job that is not running (commands reach running jobs only)."""

    code = "job-not-running"

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"job {job_id} is {state}, not running")
        self.job_id = job_id
        self.state = state


class NoCheckpointError(JobStoreError):
    code = "no-checkpoint"

    def __init__(self, job_id: str, selector: str, available: list[str]) -> None:
        listed = ", ".join(available) if available else "none recorded"
        super().__init__(f"job {job_id} has no checkpoint matching {selector!r} (available: {listed})")
        self.job_id = job_id
        self.selector = selector
        self.available = available


class CheckpointPrunedError(JobStoreError):
    """The selector names a checkpoint whose file the retention policy (or a DELETE) removed."""

    code = "checkpoint-pruned"

    def __init__(
        self, job_id: str, selector: str, path: str, pruned_at: datetime, available: list[str]
    ) -> None:
        listed = ", ".join(available) if available else "none"
        super().__init__(
            f"job {job_id}: the checkpoint {selector!r} ({path}) was pruned at {pruned_at.isoformat()} "
            f"by the retention policy or a delete; pick another one (available: {listed})"
        )
        self.job_id = job_id
        self.selector = selector
        self.pruned_at = pruned_at
        self.available = available


class DeleteRefusedError(JobStoreError):
    """A delete that would break a job still in flight (the job itself, or a fork that needs it)."""

    code = "delete-refused"

    def __init__(self, job_id: str, state: str, detail: str) -> None:
        super().__init__(detail)
        self.job_id = job_id
        self.state = state


class JobDeletedError(JobStoreError):
    """The job was deleted (a tombstone): its checkpoints are gone, nothing can resume or fork it."""

    code = "job-deleted"

    def __init__(self, job_id: str, deleted_at: datetime) -> None:
        super().__init__(f"job {job_id} was deleted at {deleted_at.isoformat()}: its checkpoints are gone")
        self.job_id = job_id
        self.deleted_at = deleted_at


class InvalidCursorError(JobStoreError, ValueError):
    code = "invalid-cursor"


class InvalidSelectorError(JobStoreError, ValueError):
    code = "invalid-selector"


class InvalidResumeError(JobStoreError, ValueError):
    code = "invalid-resume"

    def __init__(self, message: str, errors: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)  # pydantic's error list when a field was invalid (names the field)


class InvalidCommandError(JobStoreError, ValueError):
    code = "invalid-command"


class CommandNotFoundError(JobStoreError):
    code = "not-found"

    def __init__(self, job_id: str, command_id: str) -> None:
        super().__init__(f"job {job_id} has no command {command_id!r}")
        self.job_id = job_id
        self.command_id = command_id


class RaceConflictError(JobStoreError):
    """A race command that the race's state does not allow (finished, unknown candidate...)."""

    code = "race-conflict"

    def __init__(self, job_id: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id
