"""A child process dies with its parent: Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``).

Every role spawns children (``ocec-jobs up`` its API, worker and reaper; ``ocec-jobs worker`` its
Celery processes; Celery its pool children and companion; ``ocec-jobs api --workers N`` uvicorn's
workers). Without this, a parent killed by SIGKILL (the OOM killer, a closed terminal) leaves them
running as orphans that hold the port and the job. The kernel sends the signal when the *thread*
that forked the child exits, so it is set only for children forked from a process's main thread.

Shared by the roles (api, worker, ocec_jobs), hence here, beside the settings they all import.
A no-op on systems without ``prctl``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
_prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform == "linux" else None


def die_with_parent(sig: int, parent_pid: int) -> None:
    """In a child of ``parent_pid``: receive ``sig`` when the parent exits, or now if it already has."""
    if _prctl is None:
        return
    if _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the signal was armed: nobody would send it
        os.kill(os.getpid(), sig)


def preexec_dies_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``Popen(preexec_fn=...)`` that arms ``sig`` in the child for the death of this process."""
    parent = os.getpid()

    def arm() -> None:
        if _prctl is None:
            return
        _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # between fork and exec: the parent is gone, run nothing
            os._exit(1)

    return arm
