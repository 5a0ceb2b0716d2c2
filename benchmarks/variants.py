"""What the progressive-vs-full benchmark compares: the budgets (data sizes, epochs, lr) and the
variants (how each one trains on domain B), as plain data shared by the local and the server runs.

The guide's recipe is 110 epochs with the stage-2 gate at U = 11 on a large B, against a 200-epoch
full fine-tune. Here every variant gets the *same* small budget (``epochs``) on a small B (the guide's
situation: few labelled target images), so "time" is read as epochs and seconds to the best F1, not
as a longer budget for the rival.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Budget:
    """Data sizes and training settings of one benchmark size (full, quick, tiny)."""

    name: str
    seeds: tuple[int, ...]
    shifts: tuple[float, ...]
    extra_shifts: tuple[float, ...]  # where the extra (default-probing) variants run
    a_n: int  # domain-A images (train + val) for model A
    a_epochs: int
    a_lr: float
    b_n: int  # domain-B images (train + val)
    b_val_fraction: float
    epochs: int  # the budget of every variant on B
    unfreeze: int  # U: the stage-2 gate epoch
    batch_size: int
    lr: float  # base lr on B (stage 1, full fine-tune and scratch)
    augment: str = "ocec"  # the engine's default policy
    gate_f1: float = 0.80

    def model_a_key(self, seed: int) -> str:
        """Names the cached model A: everything that changes its weights."""
        values = {
            "n": self.a_n,
            "epochs": self.a_epochs,
            "lr": self.a_lr,
            "bs": self.batch_size,
            "seed": seed,
        }
        digest = hashlib.blake2b(json.dumps(values, sort_keys=True).encode(), digest_size=4).hexdigest()
        return f"A_n{self.a_n}_e{self.a_epochs}_s{seed}_{digest}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """Names a set of records: every field (a rerun with other seeds or epochs does not overwrite)."""
        return hashlib.blake2b(json.dumps(self.to_dict()).encode(), digest_size=4).hexdigest()


FULL = Budget(
    name="full", seeds=(0, 1, 2), shifts=(0.5, 0.75, 1.0), extra_shifts=(1.0,),
    a_n=1600, a_epochs=8, a_lr=3e-3, b_n=800, b_val_fraction=0.5,
    epochs=40, unfreeze=11, batch_size=32, lr=1e-3,
)  # fmt: skip
QUICK = replace(
    FULL, name="quick", seeds=(0,), shifts=(1.0,), extra_shifts=(1.0,),
    a_n=800, a_epochs=6, b_n=400, epochs=12, unfreeze=5,
)  # fmt: skip
TINY = replace(
    FULL, name="tiny", seeds=(0,), shifts=(1.0,), extra_shifts=(1.0,),
    a_n=200, a_epochs=6, a_lr=5e-3, b_n=96, epochs=4, unfreeze=2, batch_size=16,
)  # fmt: skip
BUDGETS = {b.name: b for b in (FULL, QUICK, TINY)}


class Kind(StrEnum):
    """How a variant trains; decides which table columns apply to it."""

    MODEL_A = "model_a"  # no training: the start-of-run evaluation of model A on B val
    HEAD = "head"  # stage 1 only (never unfreezes)
    PROGRESSIVE = "progressive"  # stage 1, then stage 2 from the gate epoch on (gate or policy)
    FULL = "full"  # freeze_backbone False from model A
    SCRATCH = "scratch"  # freeze_backbone False, no pretrain


HEAD_KEY = "head"  # the variant whose stage-1 checkpoint the forks start from


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    kind: Kind
    extra: bool = False  # a probe of a default: run at the budget's extra shifts ...
    every_shift: bool = False  # ... or, for this probe, at every shift (unless there are no extra shifts)
    fork: bool = False  # starts from the head-only run's checkpoint at ``fork_epoch`` (its stage 1)
    unfreeze_scale: int = 1  # gate epoch = unfreeze x this, minus (this - 1): 2 → U' = 2U - 1
    lr_scale: float = 1.0
    augment: str | None = None  # None: the budget's policy
    stage2: dict[str, Any] = field(default_factory=dict)  # StageGateConfig overrides
    note: str = ""

    def gate_epoch(self, budget: Budget) -> int | None:
        if self.kind is not Kind.PROGRESSIVE:
            return None
        return budget.unfreeze * self.unfreeze_scale - (self.unfreeze_scale - 1)

    def fork_epoch(self, budget: Budget) -> int | None:
        """The head-only epoch whose checkpoint this variant continues from (the end of its stage 1)."""
        gate = self.gate_epoch(budget)
        return gate - 1 if self.fork and gate is not None else None


PROCEED = {"on_gate_fail": "proceed"}
VARIANTS: tuple[Variant, ...] = (
    Variant("model_a", "model A as is (no training on B)", Kind.MODEL_A),
    Variant(HEAD_KEY, "head only (stage 1, never unfreezes)", Kind.HEAD),
    Variant("gated", "progressive, gated (F1 >= 0.80, keep-trying)", Kind.PROGRESSIVE, fork=True),
    Variant("forced", "progressive, stage 2 forced at U", Kind.PROGRESSIVE, fork=True, stage2=PROCEED),
    Variant("full", "full fine-tune from model A", Kind.FULL),
    Variant("scratch", "from scratch on B", Kind.SCRATCH),
    # probes of the guide's defaults (lr x 0.05, the gate, augmentation, stage-1 length and lr)
    Variant(
        "forced_lr0.2", "forced at U, stage-2 lr x 0.2", Kind.PROGRESSIVE, extra=True, fork=True,
        every_shift=True, stage2={**PROCEED, "lr_factor": 0.2},
    ),
    Variant(
        "forced_lr1", "forced at U, stage-2 lr x 1.0", Kind.PROGRESSIVE, extra=True, fork=True,
        every_shift=True, stage2={**PROCEED, "lr_factor": 1.0},
    ),
    Variant("head_noaug", "head only, augment none", Kind.HEAD, extra=True, augment="none"),
    Variant(
        "gated_late", "gated, U' = 2U-1 (longer stage 1)", Kind.PROGRESSIVE, extra=True, fork=True,
        unfreeze_scale=2,
    ),
    Variant("gated_lr2", "gated, base lr x 2 (guide: 2e-4)", Kind.PROGRESSIVE, extra=True, lr_scale=2.0),
    Variant(
        "forced_guide_lr", "forced at U, the guide's lr 1e-4 (x0.1 here)", Kind.PROGRESSIVE, extra=True,
        lr_scale=0.1, stage2=PROCEED,
    ),
)  # fmt: skip
BY_KEY = {v.key: v for v in VARIANTS}
CORE = tuple(v for v in VARIANTS if not v.extra)
EXTRAS = tuple(v for v in VARIANTS if v.extra)


def variants_at(budget: Budget, shift: float) -> tuple[Variant, ...]:
    """The variants run at ``shift``: the core ones always, the probes at the extra shifts (the
    stage-2 lr probes at every shift, so a default lr factor can be judged across shifts)."""
    probes = shift in budget.extra_shifts
    return tuple(v for v in VARIANTS if not v.extra or probes or (v.every_shift and budget.extra_shifts))


def spec_values(variant: Variant, budget: Budget, seed: int) -> dict[str, Any]:
    """The training settings of a variant (TrainConfig / job-spec field names), paths excluded."""
    values: dict[str, Any] = {
        "epochs": budget.epochs,
        "batch_size": budget.batch_size,
        "lr": budget.lr * variant.lr_scale,
        "seed": seed,
        "augment": variant.augment or budget.augment,
        "margin_method": "cosface",
        "freeze_backbone": variant.kind in (Kind.HEAD, Kind.PROGRESSIVE),
        "unfreeze_backbone_epoch": variant.gate_epoch(budget),
        "stage2": {"gate_f1": budget.gate_f1, "on_gate_fail": "keep-trying", **variant.stage2},
    }
    return json.loads(json.dumps(values))  # plain and independent of the module's constants
