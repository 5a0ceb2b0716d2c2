"""Engine exceptions: every message names the file (and row or tensor) that caused it."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class DataError(EngineError):
    """A dataset cannot be used; the message names the file and the row or path."""


class CheckpointError(EngineError):
    """A checkpoint is missing, unreadable or incompatible; the message names the file."""


class UnsafeCheckpointError(CheckpointError):
    """The file needs pickle code execution to load (refused; its payload never runs)."""


class PretrainMismatchError(CheckpointError):
    """Pretrain tensors whose shapes differ from the model's; lists names with both shapes."""

    def __init__(self, path: str, mismatched: list[tuple[str, list[int], list[int]]]) -> None:
        self.path = path
        self.mismatched = mismatched
        lines = [f"  {name}: checkpoint {ckpt} vs model {model}" for name, ckpt, model in mismatched]
        super().__init__(
            f"{path}: {len(mismatched)} tensor(s) have a different shape than the model:\n" + "\n".join(lines)
        )
