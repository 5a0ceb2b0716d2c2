"""The fault-injection suite (see conftest.py). It builds on the worker suite's harness, which lives in
a plain folder (tests/worker, imported as top-level modules: ``worker_harness``, ``fake_engine``)."""

import sys
from pathlib import Path

_WORKER_TESTS = str(Path(__file__).resolve().parents[1] / "worker")
if _WORKER_TESTS not in sys.path:
    sys.path.insert(0, _WORKER_TESTS)
