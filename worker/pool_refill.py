"""The parent's side of a fresh pool child per job: replace a finished child promptly, start it warm.

- **Refill.** Celery's prefork pool replaces an exited child when the child's sentinel fires, but a
  sentinel read before the kernel has made the child reapable finds nothing to join, and the next
  try is the pool's own 5-second timer: a recycled child (``max_tasks_per_child=1``) then left its
  worker idle about 4 s between jobs (measured: ``benchmarks/queue_scale.py``). ``refill_promptly``
  adds a short repeating timer to the worker's event loop; each tick is one ``waitpid`` per child.
- **Preload.** The modules every job imports in its child (the runner, the database driver,
  TensorBoard's protobufs) are imported once in the parent, and SQLAlchemy's mappers configured
  there, so each fork inherits them instead of doing it again. None of them imports torch: the
  parent still never loads torch or CUDA. Then ``gc.freeze()``: Celery runs ``gc.collect()`` in the
  parent before every fork, which over the preloaded objects took 0.16 s a job; frozen, they are
  not scanned (nor their pages copied into a child by the collector's writes).
"""

from __future__ import annotations

import gc
import importlib
from typing import Any

from sqlalchemy.orm import configure_mappers

REFILL_SECONDS = 0.1
CHILD_MODULES = (
    "worker.runner",
    "psycopg",
    # what ocec_engine.tensorboard's writer imports, optional (the engine runs without it)
    "tensorboard.compat.proto.event_pb2",
    "tensorboard.compat.proto.summary_pb2",
    "tensorboard.summary.writer.record_writer",
)


def refill_promptly(consumer: Any) -> bool:
    """Have ``consumer``'s event loop replace exited pool children every ``REFILL_SECONDS``."""
    hub = getattr(consumer, "hub", None)
    pool = getattr(getattr(consumer, "pool", None), "_pool", None)
    maintain = getattr(pool, "maintain_pool", None)
    if hub is None or pool is None or maintain is None or getattr(pool, "_ocec_refill", False):
        return False  # no event loop (solo/threads pool), or already set for this pool
    pool._ocec_refill = True
    hub.call_repeatedly(REFILL_SECONDS, maintain)
    return True


def preload_for_children() -> list[str]:
    """Import ``CHILD_MODULES`` here (the parent), configure the mappers, freeze what is loaded;
    return the modules that are not installed."""
    missing = []
    for name in CHILD_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    configure_mappers()
    gc.collect()  # what is garbage now would otherwise stay frozen for the life of the worker
    gc.freeze()
    return missing
