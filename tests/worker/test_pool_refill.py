"""The parent's refill timer and child-module preload (``worker.pool_refill``)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from kombu.asynchronous import Hub
from worker_harness import REPO

from worker import pool_refill


def test_refill_puts_one_repeating_maintain_timer_on_the_event_loop() -> None:
    calls: list[int] = []
    pool = SimpleNamespace(maintain_pool=lambda: calls.append(1))
    hub = Hub()
    consumer = SimpleNamespace(hub=hub, pool=SimpleNamespace(_pool=pool))
    try:
        assert pool_refill.refill_promptly(consumer)
        assert not pool_refill.refill_promptly(consumer)  # a consumer restart adds no second timer
        (scheduled,) = hub.timer.queue
        scheduled.entry()  # what the event loop runs every REFILL_SECONDS
        assert calls == [1]
    finally:
        hub.close()


def test_refill_needs_an_event_loop_and_a_prefork_pool() -> None:
    assert not pool_refill.refill_promptly(SimpleNamespace(hub=None, pool=None))
    assert not pool_refill.refill_promptly(SimpleNamespace(hub=Hub(), pool=SimpleNamespace()))


def test_preload_imports_the_runner_but_never_torch_and_freezes_it() -> None:
    code = (
        "import gc, sys; from worker.pool_refill import preload_for_children as p; m = p(); "
        "print(m, 'worker.runner' in sys.modules, 'torch' in sys.modules, gc.get_freeze_count() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["[]", "True", "False", "True"], out.stderr
