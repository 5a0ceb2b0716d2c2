"""Deterministic randomness: every random draw of a run is a pure function of (seed, epoch, batch).

The data order of epoch ``e`` comes from a generator seeded by (seed, e); the augmentation generator
and the global torch seed (dropout) are reset from (seed, e, b) at the start of batch ``b``. So the
state a resume needs is just the position (epoch, batch) — a run split by a checkpoint, even in the
middle of an epoch, draws exactly the same numbers as a run that never stopped. The global RNG
states are still captured in checkpoints (for anything that draws outside this scheme).
"""

from __future__ import annotations

import hashlib
import struct
from enum import IntEnum
from typing import Any

import torch
from torch import Tensor

_MASK_63 = (1 << 63) - 1


class Stream(IntEnum):
    """Independent streams derived from the same (seed, epoch, batch)."""

    INIT = 0  # model initialisation
    ORDER = 1  # per-epoch data order
    AUGMENT = 2  # per-batch augmentation
    GLOBAL = 3  # the global torch RNG (dropout) per batch


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers; different tuples give unrelated seeds (BLAKE2b)."""
    packed = struct.pack(f"<{len(parts)}q", *parts)
    return int.from_bytes(hashlib.blake2b(packed, digest_size=8).digest(), "little") & _MASK_63


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """The permutation of ``n`` training samples used in ``epoch`` (CPU int64)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, Stream.ORDER, epoch))
    return torch.randperm(n, generator=gen)


def batch_generator(seed: int, epoch: int, batch: int, device: torch.device) -> torch.Generator:
    """The augmentation generator of one batch, on the batch's device."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, Stream.AUGMENT, epoch, batch))


def seed_batch(seed: int, epoch: int, batch: int) -> None:
    """Reset the global torch RNG (CPU and CUDA: dropout draws from it) for one batch."""
    torch.manual_seed(derive_seed(seed, Stream.GLOBAL, epoch, batch))


def seed_init(seed: int) -> None:
    """Seed the global RNG before the model is built (fresh runs only)."""
    torch.manual_seed(derive_seed(seed, Stream.INIT))


def capture() -> dict[str, Any]:
    """Global RNG states as tensors (weights_only-loadable)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict[str, Any] | None) -> None:
    if not state:
        return
    if isinstance(state.get("torch"), Tensor):
        torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
