"""The suite's own leak check: a pytest run whose test leaves a process behind fails, naming the test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.process_leaks import alive

REPO = Path(__file__).resolve().parents[1]  # the inner run loads tests.process_leaks from here

INNER = textwrap.dedent(
    """
    import subprocess, sys
    from pathlib import Path

    SLEEP = [sys.executable, "-c", "import time; time.sleep(300)"]

    def test_stops_what_it_starts():
        proc = subprocess.Popen(SLEEP)
        proc.kill()
        proc.wait()

    def test_leaves_an_orphan_behind(tmp_path):
        # its own session, never waited for: as `ocec-jobs up` left its children before
        proc = subprocess.Popen(SLEEP, start_new_session=True)
        (Path(__file__).parent / "leaked.pid").write_text(str(proc.pid))

    def test_after_it():
        pass
    """
)


def test_a_process_that_outlives_its_test_fails_the_run_and_is_named(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    argv = [sys.executable, "-m", "pytest", "-p", "tests.process_leaks", "-q", "-p", "no:cacheprovider"]
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = os.environ | {"OCEC_TEST_LEAK_SETTLE_S": "1", "PYTHONPATH": path}
    done = subprocess.run(
        [*argv, str(tmp_path / "test_inner.py")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    leaked = int((tmp_path / "leaked.pid").read_text())

    assert done.returncode == 1, done.stdout
    assert "3 passed, 1 error" in done.stdout
    assert "1 process(es) started by the tests outlived them (killed)" in done.stdout
    assert f"pid {leaked} started by test_inner.py::test_leaves_an_orphan_behind:" in done.stdout
    assert "test_stops_what_it_starts" not in done.stdout.split("outlived them")[1]
    assert not alive(leaked), "the leak was killed"
