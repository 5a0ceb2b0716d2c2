"""A fast, torch-free fake of ``ocec_engine.evaluation.evaluate_to_dir``.

The worker tests plug it in with ``OCEC_EVALUATOR=fake_evaluator:evaluate_to_dir`` (``tests/worker``
on ``PYTHONPATH``); it writes the report of ``tests.evaluation_report``. A data root holding
``fail_evaluation`` makes it raise ``DataError`` naming that file (a dataset the engine refuses); one
holding ``slow_evaluation`` (a number of seconds) makes it wait that long between its progress calls
(a run long enough to be killed mid-way).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocec_engine.errors import DataError
from tests.evaluation_report import make_report, write_report

FAIL_MARKER = "fail_evaluation"
SLOW_MARKER = "slow_evaluation"


def evaluate_to_dir(
    model_path: Path, data_root: Path, out_dir: Path, *, split: str = "all", threshold_rule: str = "f1",
    target: float | None = None, top_k: int = 16, bootstrap: int = 1000, seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    if (data_root / FAIL_MARKER).exists():
        raise DataError(f"{data_root / FAIL_MARKER}: this dataset is scripted to fail")
    slow = data_root / SLOW_MARKER
    pause = float(slow.read_text()) if slow.exists() else 0.0
    if progress is not None:
        for done in (0, 20, 40):
            if done:
                time.sleep(pause)
            progress(done, 40)
    report = make_report(root=data_root.name, model=model_path.name)
    report["data"]["split"] = split
    report["threshold"] = {"value": 0.5, "rule": threshold_rule, "target": target}
    report["worst"] = report["worst"][:top_k]
    return write_report(Path(out_dir), report)
