"""An ``OCEC_ENGINE`` entry for the overhead benchmark: the real engine, with every hook call timed.

The worker runs it with ``OCEC_ENGINE=timed_engine:train`` (``benchmarks`` on ``PYTHONPATH``); it
wraps whatever hooks it is given in ``Timed``, which adds up the seconds the training thread spends
inside each hook method (the server's own work on that thread: metrics row, events, checkpoint
records, TensorBoard, the command probe) and stamps the wall clock at every epoch end. The figures
go to ``timing.json`` in the run folder, with the ``TrainConfig`` the worker built, so the benchmark
can run the very same config without a server (``baseline``) and compare.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ocec_engine import loop
from ocec_engine.config import TrainConfig
from ocec_engine.hooks import NullHooks, TrainingHooks, TrainResult

TIMING = "timing.json"
HOOKS = (
    "on_train_start", "on_epoch_end", "on_gate_check", "on_command_result", "on_stage_change",
    "on_checkpoint", "on_train_end", "on_batch_end", "poll_commands", "should_stop",
)  # fmt: skip


class Timed:
    """``hooks`` with the seconds spent in each method summed (and counted) in ``seconds``."""

    def __init__(self, hooks: TrainingHooks) -> None:
        self.inner = hooks
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)  # CPU time of the training thread: load-proof
        self.calls: dict[str, int] = defaultdict(int)
        self.epoch_ends: list[float] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name not in HOOKS:
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                now = time.perf_counter()
                self.seconds[name] += now - started
                self.cpu[name] += time.thread_time() - cpu
                self.calls[name] += 1
                if name == "on_epoch_end":
                    self.epoch_ends.append(now)

        return timed


def train(config: TrainConfig, hooks: TrainingHooks | None = None) -> TrainResult:
    timed = Timed(hooks or NullHooks())
    writes = [0.0]
    write_atomic = loop.write_atomic

    def timed_write(path: Path, data: bytes) -> int:  # the engine's own checkpoint files
        started = time.perf_counter()
        try:
            return write_atomic(path, data)
        finally:
            writes[0] += time.perf_counter() - started

    loop.write_atomic = timed_write  # type: ignore[assignment]
    started = time.perf_counter()
    try:
        result = loop.train(config, timed)  # type: ignore[arg-type]
    finally:
        loop.write_atomic = write_atomic  # type: ignore[assignment]
    record = {
        "train_seconds": time.perf_counter() - started,
        "write_seconds": writes[0],
        "epoch_ends": [t - started for t in timed.epoch_ends],
        "hook_seconds": dict(timed.seconds),
        "hook_cpu_seconds": dict(timed.cpu),
        "hook_calls": dict(timed.calls),
        "config": config.to_dict(),
    }
    (Path(config.output_dir) / TIMING).write_text(json.dumps(record, indent=1))
    return result


def baseline(config: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """The same config run here without a server (no-op hooks, as the engine CLI without output)."""
    values = {**config, "output_dir": str(output_dir), "resume": None}
    train(TrainConfig.from_dict(values))
    return dict(json.loads((output_dir / TIMING).read_text()))


if __name__ == "__main__":  # python timed_engine.py CONFIG_JSON OUTPUT_DIR
    import sys

    baseline(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
