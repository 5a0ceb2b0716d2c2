"""Which audit events are told to webhooks, and under which type."""

from __future__ import annotations

import pytest

from jobstore.events import EventKind
from jobstore.models import JobEvent
from jobstore.notify.events import NotifyType, notify_type


def state(to: str) -> JobEvent:
    return JobEvent(job_id="j", seq=1, kind=EventKind.STATE_CHANGE, from_state="running", to_state=to)


def stage(before: int | None, after: int) -> JobEvent:
    return JobEvent(job_id="j", seq=1, kind=EventKind.STAGE_CHANGE, from_stage=before, to_stage=after)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (state("running"), NotifyType.STATE_CHANGED),
        (state("paused"), NotifyType.STATE_CHANGED),
        (state("interrupted"), NotifyType.STATE_CHANGED),
        (state("awaiting_decision"), NotifyType.AWAITING_DECISION),
        (state("succeeded"), NotifyType.FINISHED),
        (state("failed"), NotifyType.FINISHED),
        (state("cancelled"), NotifyType.FINISHED),
        (stage(1, 2), NotifyType.STAGE_CHANGED),
        (stage(2, 3), NotifyType.STAGE_CHANGED),
        (stage(2, 2), None),  # a new lr within the stage
        (stage(None, 1), None),  # a run starting in its first stage
        (JobEvent(job_id="j", seq=1, kind=EventKind.GATE_CHECK), None),
        (JobEvent(job_id="j", seq=1, kind=EventKind.EPOCH), None),
    ],
)
def test_the_told_events_and_their_types(event: JobEvent, expected: NotifyType | None) -> None:
    assert notify_type(event) == expected
