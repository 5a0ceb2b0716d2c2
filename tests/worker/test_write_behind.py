"""``WriteBehind``: writes run in order off the calling thread; waits bound the lag; errors come back."""

from __future__ import annotations

import threading

import pytest

from worker.write_behind import WriteBehind


def test_writes_run_in_order_on_another_thread_and_wait_returns_when_done() -> None:
    behind = WriteBehind()
    done: list[tuple[int, str]] = []
    for i in range(50):
        behind.submit(lambda i=i: done.append((i, threading.current_thread().name)))
    behind.wait()
    assert [i for i, _ in done] == list(range(50))
    assert {name for _, name in done} == {"write-behind"}
    assert behind.close() is None


def test_wait_upto_blocks_until_those_writes_are_done_but_not_later_ones() -> None:
    behind = WriteBehind()
    release = threading.Event()
    done: list[int] = []
    behind.submit(lambda: done.append(1))
    mark = behind.submitted
    behind.submit(lambda: (release.wait(10), done.append(2)))
    behind.wait(mark)  # returns while the second write is still held
    assert done == [1]
    release.set()
    behind.wait()
    assert done == [1, 2]
    behind.close()


def test_the_first_error_stops_later_writes_and_is_raised_on_the_caller() -> None:
    behind = WriteBehind()
    done: list[int] = []

    def fail() -> None:
        raise LookupError("refused")

    behind.submit(fail)
    behind.submit(lambda: done.append(2))
    with pytest.raises(LookupError, match="refused"):
        behind.wait()
    with pytest.raises(LookupError):
        behind.submit(lambda: done.append(3))
    assert isinstance(behind.close(), LookupError)
    assert done == []


def test_close_finishes_the_queued_writes() -> None:
    behind = WriteBehind()
    release = threading.Event()
    done: list[int] = []
    behind.submit(lambda: release.wait(10))
    for i in range(5):
        behind.submit(lambda i=i: done.append(i))
    release.set()
    assert behind.close() is None
    assert done == list(range(5))
    with pytest.raises(RuntimeError, match="closed"):
        behind.submit(lambda: None)
