"""The re-send rule (``jobstore.resend``) as a pure function: which queued jobs get their message again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobstore.resend import QueueView, ResendRule, Waiting

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULE = ResendRule(after=timedelta(seconds=60), cap=timedelta(seconds=200))
NOW = T0 + timedelta(seconds=100)
STALLED = T0 - timedelta(seconds=1)  # the last claim or attempt end, longer than the window ago


def waiting(count: int, *, dispatched: datetime | None = T0) -> list[Waiting]:
    return [Waiting(f"j{n}", dispatched, 1) for n in range(count)]


def test_a_moving_queue_resends_nothing_however_long_its_jobs_wait() -> None:
    view = QueueView(last_activity=NOW - timedelta(seconds=5), live_workers=2, idle_workers=0)
    assert RULE.to_resend(waiting(50), view, NOW) == []


def test_a_stalled_queue_with_an_idle_worker_has_lost_every_message() -> None:
    view = QueueView(last_activity=STALLED, live_workers=2, idle_workers=1)
    assert RULE.to_resend(waiting(50), view, NOW) == [f"j{n}" for n in range(50)]


def test_with_no_live_worker_every_due_job_is_sent() -> None:
    view = QueueView(last_activity=None, live_workers=0, idle_workers=0)
    assert RULE.to_resend(waiting(3), view, NOW) == ["j0", "j1", "j2"]


def test_behind_busy_workers_only_the_head_of_the_line_is_sent() -> None:
    view = QueueView(last_activity=STALLED, live_workers=4, idle_workers=0, head="j7")
    assert RULE.to_resend(waiting(50), view, NOW) == ["j7"]
    fresh = QueueView(last_activity=STALLED, live_workers=4, idle_workers=0, head="just re-sent")
    assert RULE.to_resend(waiting(50), fresh, NOW) == []  # the head waits its backoff: nobody else goes


def test_a_job_never_dispatched_is_always_sent() -> None:
    moving = QueueView(last_activity=NOW, live_workers=1, idle_workers=0)
    jobs = [*waiting(2), Waiting("never", None, 0)]
    assert RULE.to_resend(jobs, moving, NOW) == ["never"]
    busy = QueueView(last_activity=STALLED, live_workers=1, idle_workers=0, head="j0")
    assert RULE.to_resend(jobs, busy, NOW) == ["j0", "never"]


def test_the_backoff_doubles_per_job_up_to_the_cap() -> None:
    def due(seconds: float, count: int) -> bool:
        return RULE.backoff_due(T0, count, T0 + timedelta(seconds=seconds))

    assert (due(59, 1), due(60, 1)) == (False, True)
    assert (due(119, 2), due(120, 2)) == (False, True)
    assert (due(199, 3), due(200, 3)) == (False, True)  # 240 s capped at 200 s
    assert due(200, 10_000)  # a huge count stays at the cap
    stalled = QueueView(last_activity=STALLED, live_workers=0, idle_workers=0)
    assert RULE.to_resend([Waiting("j0", T0, 2)], stalled, NOW) == []  # 100 s < 120 s


def test_the_window_decides_stalled() -> None:
    at = NOW - RULE.after
    assert RULE.stalled(QueueView(at, 1, 0), NOW)
    assert not RULE.stalled(QueueView(at + timedelta(seconds=1), 1, 0), NOW)
