"""How the suite is split over ``pytest -n N --dist loadfile`` workers (scripts/test.sh).

Packages that start one expensive stack per session (the fault suite's private servers, the
steering and dashboard stacks) stay on one worker each, so the stack is built once; every other
test module is a unit of its own (as ``loadfile`` does). The long units are put first so that they
start first and the short modules fill in around them: a long module left to the end of the queue
would run alone while the other worker idles. Without xdist only the order changes.

(xdist's own ``--dist loadgroup`` reads ``xdist_group`` marks into node ids, which pytest 9 no
longer lets a plugin rewrite: the groups were silently ignored, hence a scheduler of our own.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Longest first: one worker takes each of these whole, in this order.
PACKAGES = ("faults", "steering", "api/dashboard", "docs", "benchmarks", "ocec_jobs/client")
# Then the longest modules (minutes each on a loaded box: real engines, real process trees, the
# fuzzer), ahead of the many short ones, which come in collection order.
LONG_MODULES = (
    "integration/test_progressive_job.py",
    "ocec_jobs/test_demo.py",
    "api/test_fuzz.py",
    "ocec_jobs/test_supervisor.py",
    "ocec_jobs/test_up.py",
    "ocec_jobs/test_serve.py",
)


def unit_of(path: Path) -> tuple[int, str]:
    """(rank, scheduling unit) of a test file: its package when listed above, else the file."""
    relative = path.resolve().relative_to(TESTS)
    for rank, package in enumerate(PACKAGES):
        if relative.is_relative_to(package):
            return rank, package
    name = relative.as_posix()
    if name in LONG_MODULES:
        return len(PACKAGES) + LONG_MODULES.index(name), name
    return len(PACKAGES) + len(LONG_MODULES), name


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ranked = sorted(enumerate(items), key=lambda pair: (unit_of(pair[1].path)[0], pair[0]))
    items[:] = [item for _, item in ranked]


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own
    from xdist.scheduler import LoadScopeScheduling

    class PackageScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(ROOT / nodeid.split("::", 1)[0])[1]

    config.option.loadscopereorder = False  # keep our order (xdist would sort units by test count)
    return PackageScheduling(config, log)
