"""One real stack for the whole steering suite (API over HTTP + a Celery worker running the real
engine + Redis + PostgreSQL), the data it trains on, and the operators who steer it.

Data: synthetic domain-B eye crops (``ocec_engine.synthetic``) — ``B`` (128 images: fast epochs) and
``B600`` (600 images: epochs long enough to aim a command into their last batches). Model A is the
real OCEC reference checkpoint (``ocec_ref_cosface_epoch0012.pt``; without the shared fixtures, a
model trained here on domain A): on B its val F1 is about 0.6, so a 0.95 gate fails. On CPU every
run is deterministic.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))  # the worker harness

from worker_harness import make_harness

from api.settings import ApiSettings
from jobstore.db import make_engine, write_transaction
from jobstore.migrate import upgrade_to_head
from jobstore.repo import keys
from jobstore.repo.keys import Role
from ocec_engine import train
from ocec_engine.config import AugmentPolicy, DeviceChoice, TrainConfig
from ocec_engine.synthetic import make_dataset
from tests.api.conftest import forget_queue
from tests.live_api import serve
from tests.steering.stack import Operator, Steering

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "ocec_ref_cosface_epoch0012.pt"
PRETRAIN = "ocec_A.pt"
# Commands must not need the heartbeat (issue 12): one beat a minute, so only the engine's own
# checks bring a command in while a test waits (no steering test waits for a lease to run out).
SLOW_HEARTBEAT = {"OCEC_HEARTBEAT_SECONDS": "60", "OCEC_LEASE_SECONDS": "180"}


@pytest.fixture(scope="session")
def steering(
    pg_database_factory: Callable[[], str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Steering]:
    url = pg_database_factory()
    upgrade_to_head(url)
    tmp = tmp_path_factory.mktemp("steering")
    queue = f"test-steering-{uuid.uuid4().hex[:12]}"
    db = make_engine(url)
    harness = make_harness(
        tmp, url, redis_url, queue, db, OCEC_ENGINE="ocec_engine:train", OCEC_DATA_CACHE=str(tmp / "cache"),
        OMP_NUM_THREADS="1",  # a tiny model on a shared 2-core host: one thread, no spinning OpenMP pool
    )  # fmt: skip
    _data(harness.settings.data_root, harness.settings.model_root)
    settings = ApiSettings(
        home=harness.settings.home, database_url=url, broker_url=redis_url, queue=queue, max_page_size=500
    )
    try:
        harness.start_worker("steer", **SLOW_HEARTBEAT)
        with (
            serve(settings) as base,
            _operator(db, base, "alice") as alice,
            _operator(db, base, "bob") as bob,
        ):
            yield Steering(base, harness, alice, bob)
    finally:
        harness.stop_workers()
        db.dispose()
        forget_queue(redis_url, queue)  # only this queue's keys: never FLUSHDB


def _data(data_root: Path, model_root: Path) -> None:
    make_dataset(data_root / "B", domain="B", n=128, seed=2)
    make_dataset(data_root / "B600", domain="B", n=600, seed=3)
    shutil.copy(_model_a(data_root.parent / "model-a"), model_root / PRETRAIN)


def _model_a(scratch: Path) -> Path:
    """The OCEC reference checkpoint (shared/fixtures, or $OCEC_REFERENCE_FIXTURES); where it is
    absent, a model A trained here for two epochs on synthetic domain A."""
    shared = [
        REPO / "shared" / "fixtures" / "ocec_reference",
        REPO.parent / "shared" / "fixtures" / "ocec_reference",
    ]
    for folder in [os.environ.get("OCEC_REFERENCE_FIXTURES", ""), *shared]:
        if folder and (Path(folder) / REFERENCE).is_file():
            return Path(folder) / REFERENCE
    make_dataset(scratch / "A", domain="A", n=160, seed=1)
    config = TrainConfig(
        data_root=str(scratch / "A"), output_dir=str(scratch / "run"), epochs=2, batch_size=64, lr=1e-3,
        freeze_backbone=False, augment=AugmentPolicy.NONE, device=DeviceChoice.CPU,
    )  # fmt: skip
    best = train(config).best_checkpoint
    assert best is not None
    return Path(best)


@contextmanager
def _operator(db: Engine, base: str, name: str) -> Iterator[Operator]:
    """An operator with an API key of their own (the server records them as "name (key …)")."""
    with write_transaction(db) as session:
        made = keys.create_key(session, name=name, role=Role.OPERATOR)
        secret, actor = made.secret, keys.actor_label(made.record)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30.0) as client:
        yield Operator(client, actor)


# ---- a job forced into stage 2 by hand, then cancelled (shared by the force, resume and fork tests)


@dataclass(frozen=True)
class Forced:
    job_id: str
    sent_after_epoch: int  # the last epoch recorded when alice sent the force
    first: httpx.Response  # alice: force stage 2 (Idempotency-Key)
    replay: httpx.Response  # alice again, same key
    merged: httpx.Response  # bob, another request for the same stage while it is open
    applied: dict[str, Any]  # the command_applied event
    again: httpx.Response  # bob: stage 2 once the job is in it
    unconfigured: httpx.Response  # bob: stage 3, which the job does not have
    cancel: httpx.Response


FORCED_SPEC: dict[str, Any] = {
    "data_root": "B600", "pretrain": PRETRAIN, "epochs": 40, "batch_size": 8, "lr": 1e-3,
    "augment": "light", "margin_method": "cosface",  # no unfreeze epoch: stage 2 only by hand
}  # fmt: skip


@pytest.fixture(scope="session")
def forced(steering: Steering) -> Forced:
    s, alice, bob = steering, steering.alice, steering.bob
    job_id = s.submit("forced", **FORCED_SPEC)
    sent_after = s.wait_row(job_id, 1)["epoch"]
    body = {"stage": 2, "reason": "stage-1 F1 is as good as it gets"}
    first = alice.post(f"/jobs/{job_id}/stage", body, key="force-2")
    replay = alice.post(f"/jobs/{job_id}/stage", body, key="force-2")
    merged = bob.post(f"/jobs/{job_id}/stage", {"stage": 2, "reason": "me too"})
    command_id = first.json()["command"]["id"]
    applied = s.wait_event(job_id, "command_applied", lambda e: e["command_id"] == command_id)
    again = bob.post(f"/jobs/{job_id}/stage", {"stage": 2, "reason": "is it in stage 2 yet?"})
    unconfigured = bob.post(f"/jobs/{job_id}/stage", {"stage": 3, "reason": "all of it"})
    s.wait_row(job_id, applied["epoch"])  # one full epoch in stage 2 before stopping
    cancel = alice.post(f"/jobs/{job_id}/cancel", {"reason": "seen enough"})
    s.wait_state(job_id, "cancelled")
    return Forced(job_id, sent_after, first, replay, merged, applied, again, unconfigured, cancel)
