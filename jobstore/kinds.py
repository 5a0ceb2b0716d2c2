"""Small value sets stored as strings: command kinds and statuses, checkpoint kinds.

``CommandKind`` and ``CheckpointKind`` mirror ``ocec_engine.hooks`` value for value (jobstore may not
import the engine), so the worker converts with ``CommandKind(engine_value)``;
tests/worker/test_mirrors.py checks the copies.
"""

from __future__ import annotations

from enum import StrEnum


class CommandKind(StrEnum):
    FORCE_STAGE = "force_stage"  # params: {"stage": 2|3}
    PAUSE = "pause"
    CANCEL = "cancel"


class CommandStatus(StrEnum):
    PENDING = "pending"  # stored, not yet handed to a worker
    DELIVERED = "delivered"  # returned by a heartbeat; the worker applies it at its next safe point
    APPLIED = "applied"
    REFUSED = "refused"  # the engine declined (e.g. already in that stage), with a reason
    EXPIRED = "expired"  # the attempt ended before it was applied


OPEN_COMMAND_STATUSES: frozenset[CommandStatus] = frozenset({CommandStatus.PENDING, CommandStatus.DELIVERED})


class CheckpointKind(StrEnum):
    LAST = "last"
    BEST = "best"
    STAGE_ENTRY = "stage_entry"  # state at the start of a stage, before its first epoch
    INTERRUPT = "interrupt"  # mid-epoch state written on pause / cancel / preempt
    EPOCH = "epoch"  # epochs/epoch_NNNN.pt: the state after that epoch (kept per epoch)
    ONNX = "onnx"  # the exported model (not a training state; never a resume point)
