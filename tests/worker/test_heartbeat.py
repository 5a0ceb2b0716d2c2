"""The heartbeat thread: beats at once and then periodically, queues commands, self-fences, escalates.

The beat function is the thread's input; its real implementation (jobstore's fenced lease renewal)
is exercised end to end in test_runner.py and test_tasks.py.
"""

from __future__ import annotations

import threading

from worker_harness import wait_for

from jobstore.errors import FencedOutError
from worker.heartbeat import Heartbeat, LeaseLostError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _heartbeat(beats: list[list[str]], clock: Clock, overdue: threading.Event) -> Heartbeat[str]:
    script = iter(beats)

    def beat() -> list[str]:
        step = next(script, [])
        if step == ["fenced"]:
            raise LeaseLostError("attempt 1 of job j is fenced out")
        if step == ["db-down"]:
            raise ConnectionError("database unavailable")
        return step

    return Heartbeat(
        beat, 0.01, is_cancel=lambda c: c == "cancel", cancel_deadline=5, on_overdue=overdue.set, clock=clock
    )


def test_commands_are_queued_in_order_and_taken_once() -> None:
    hb = _heartbeat([["force_stage"], ["db-down"], ["pause", "cancel"]], Clock(), threading.Event())
    for _ in range(3):
        hb.beat_once()  # a failed beat (database down) is logged and skipped
    assert hb.take_commands() == ["force_stage", "pause", "cancel"]
    assert hb.take_commands() == []
    assert hb.fenced is None


def test_fenced_out_stops_the_thread_and_says_why() -> None:
    hb = _heartbeat([[], [], ["fenced"], ["never fetched"]], Clock(), threading.Event())
    hb.start()
    wait_for(lambda: not hb.is_alive(), 5, "the heartbeat thread to stop")
    assert hb.fenced is not None and "fenced out" in hb.fenced
    assert hb.take_commands() == []


def test_jobstore_fencing_error_also_fences() -> None:
    def beat() -> list[str]:
        raise FencedOutError("j", 1, 2, "queued")

    hb: Heartbeat[str] = Heartbeat(
        beat, 1, is_cancel=lambda c: False, cancel_deadline=5, on_overdue=lambda: None
    )
    hb.beat_once()
    assert hb.fenced is not None and "attempt 1" in hb.fenced


def test_a_cancel_not_honoured_in_time_escalates_once_the_deadline_passes() -> None:
    clock, overdue = Clock(), threading.Event()
    hb = _heartbeat([["cancel"], [], []], clock, overdue)
    hb.beat_once()
    clock.now = 4.9
    hb.beat_once()
    assert not overdue.is_set()
    clock.now = 5.0
    hb.beat_once()
    assert overdue.is_set()


def test_stop_joins_the_thread() -> None:
    hb = _heartbeat([], Clock(), threading.Event())
    hb.start()
    hb.stop()
    assert not hb.is_alive()


def test_the_deadline_is_checked_even_while_the_database_is_down() -> None:
    clock, overdue = Clock(), threading.Event()
    hb = _heartbeat([["cancel"], ["db-down"]], clock, overdue)
    hb.beat_once()
    clock.now = 10
    hb.beat_once()
    assert overdue.is_set() and hb.cancels == ["cancel"]
