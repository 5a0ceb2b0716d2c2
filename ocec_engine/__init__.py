"""ocec_engine: pure-PyTorch progressive fine-tuning of the OCEC open/closed-eye classifier.

Importing this package does not import torch; ``train`` loads the loop on first use, so a process
that only builds configs (or a Celery parent that must never touch CUDA) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocec_engine.config import TrainConfig
from ocec_engine.hooks import NullHooks, TrainingHooks

if TYPE_CHECKING:
    from ocec_engine.hooks import TrainResult

__all__ = ["NullHooks", "TrainConfig", "TrainingHooks", "train"]


def train(config: TrainConfig, hooks: TrainingHooks | None = None) -> TrainResult:
    """Run (or resume) a progressive fine-tuning run; see ``ocec_engine.loop.train``."""
    from ocec_engine.loop import train as _train

    return _train(config, hooks or NullHooks())
