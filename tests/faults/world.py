"""The fault suite's training world: model A, dataset B, the job spec, and an uninterrupted reference.

Built once per session in a subprocess (``python tests/faults/world.py <folder>``) with the same
thread settings as the workers, so the reference run and the jobs under faults do the same arithmetic:

- model A: the OCEC CNN trained a few epochs on synthetic domain A (the pretrain of every job);
- dataset B: the shifted domain, a few hundred 32x64 crops, with batches small enough that an epoch
  has ~120 batches and lasts about a second (a kill lands mid-epoch);
- the reference: ``SPEC`` turned into a ``TrainConfig`` exactly as the worker does
  (``worker.engine_config``) and trained without interruption; every epoch's metrics and every
  stage event go to ``reference.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PRETRAIN = "ocec_A_best.pt"
DATASET = "B"
EPOCHS = 6
UNFREEZE = 3
# Every job of the suite runs this spec (a progressive fine-tune of A on B; the stage-2 gate at 0.5
# opens at epoch UNFREEZE, so each job has a stage 1 -> 2 transition to preserve across faults).
SPEC: dict[str, Any] = {
    "data_root": DATASET,
    "pretrain": PRETRAIN,
    "epochs": EPOCHS,
    "batch_size": 4,
    "lr": 1e-3,
    "unfreeze_backbone_epoch": UNFREEZE,
    "augment": "light",
    "margin_method": "cosface",
    "stage2": {"gate_f1": 0.5},
}
# Same arithmetic in every process: one intra-op thread (also the fair share of a 2-core CI box).
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class StageStep:
    from_stage: int | None
    to_stage: int
    epoch: int
    trigger: str


@dataclass(frozen=True)
class World:
    root: Path
    epochs: list[dict[str, Any]]  # the reference's EpochMetrics, as dicts
    stages: list[StageStep]  # the reference's stage events

    @property
    def dataset(self) -> Path:
        return self.root / "data" / DATASET

    @property
    def pretrain(self) -> Path:
        return self.root / "models" / PRETRAIN

    @property
    def epoch_seconds(self) -> float:
        return max(float(e["epoch_seconds"]) for e in self.epochs)

    def install(self, data_root: Path, model_root: Path) -> None:
        """Copy dataset B and model A into a test's roots (copies: the roots refuse symlinks out)."""
        shutil.copytree(self.dataset, data_root / DATASET, dirs_exist_ok=True)
        model_root.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.pretrain, model_root / PRETRAIN)


def fingerprint() -> str:
    """What the world depends on: this file, the engine, the spec -> config mapping, torch's version.

    A world built by an earlier session with the same fingerprint is the same world (the engine is
    deterministic on CPU), so the suite may reuse it instead of training model A and the reference
    again.
    """
    import torch

    digest = hashlib.sha256(torch.__version__.encode())
    sources = [Path(__file__), REPO / "worker" / "engine_config.py", REPO / "jobstore" / "spec.py"]
    for path in [*sources, *sorted((REPO / "ocec_engine").rglob("*.py"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached(cache: Path | None, scratch: Path, env: dict[str, str]) -> World:
    """The world from ``cache`` (a folder kept between sessions) if it holds one, else built there."""
    if cache is None:
        return build(scratch, env)
    if (cache / "reference.json").is_file():
        return load(cache)
    build(scratch, env)
    staging = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    shutil.copytree(scratch, staging, ignore=shutil.ignore_patterns("runs"))
    with contextlib.suppress(OSError):  # another session may have stored it meanwhile: use either
        staging.rename(cache)
    shutil.rmtree(staging, ignore_errors=True)
    return load(cache if (cache / "reference.json").is_file() else scratch)


def build(root: Path, env: dict[str, str]) -> World:
    """Build the world in ``root`` (a subprocess) and load it."""
    root.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(root)],
        cwd=REPO,
        env={**env, **THREAD_ENV},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the fault-suite world failed:\n{result.stdout}\n{result.stderr}")
    return load(root)


def load(root: Path) -> World:
    data = json.loads((root / "reference.json").read_text())
    return World(root, data["epochs"], [StageStep(**s) for s in data["stages"]])


def _make(root: Path) -> None:
    """Runs in the subprocess: data, model A, reference run."""
    from jobstore.settings import Settings
    from ocec_engine import train
    from ocec_engine.config import TrainConfig
    from ocec_engine.hooks import EpochMetrics, NullHooks, StageEvent
    from ocec_engine.synthetic import make_dataset
    from worker.engine_config import build_train_config, plan_run

    settings = Settings(home=root, database_url="sqlite://", broker_url="memory://")
    make_dataset(root / "A", domain="A", n=400, seed=1)
    make_dataset(settings.data_root / DATASET, domain="B", n=640, seed=2)
    model_a = TrainConfig(
        data_root=str(root / "A"), output_dir=str(root / "model-a"), epochs=5, batch_size=32, lr=3e-3,
        freeze_backbone=False, augment="none", device="cpu",  # type: ignore[arg-type]
    )  # fmt: skip
    result = train(TrainConfig.from_dict(model_a.to_dict()))
    assert result.best_checkpoint is not None
    settings.model_root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(result.best_checkpoint, settings.model_root / PRETRAIN)

    class Recorder(NullHooks):
        def __init__(self) -> None:
            self.epochs: list[dict[str, Any]] = []
            self.stages: list[dict[str, Any]] = []

        def on_epoch_end(self, metrics: EpochMetrics) -> None:
            self.epochs.append(dataclasses.asdict(metrics))

        def on_stage_change(self, event: StageEvent) -> None:
            self.stages.append(
                {"from_stage": event.from_stage, "to_stage": event.to_stage, "epoch": event.epoch,
                 "trigger": str(event.trigger)}
            )  # fmt: skip

    config = build_train_config(plan_run(SPEC, {}), "reference", settings)
    recorder = Recorder()
    done = train(config, recorder)
    assert str(done.outcome) == "completed", done.reason
    payload = {"epochs": recorder.epochs, "stages": recorder.stages}
    (root / "reference.json").write_text(json.dumps(payload, default=str))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    _make(Path(sys.argv[1]))
