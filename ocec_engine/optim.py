"""Optimizer built from a name-keyed group manifest, and the lr schedule of a stage.

Groups. ``head`` holds the live head parameters, ``backbone`` the trainable backbone parameters
(omitted while none train); names in registration order, each parameter in exactly one group, no
frozen parameter anywhere. AdamW with the same weight decay on every trainable tensor (as OCEC).

Transitions rebuild the optimizer from the new manifest and carry each surviving parameter's Adam
state over by identity, so the head keeps its moments while new backbone params start fresh.
Checkpoints store the torch state dict, whose groups carry ``name`` and ``param_names``; loading
checks the names against the rebuilt optimizer before restoring (torch maps state by position).

Schedule. Every group of a stage shares the stage's base lr. The lr used in epoch ``e`` is
``base x warmup(e) x plateau_scale``: ``warmup`` is linear (e / W) over the first W epochs of the
run only — never at a transition — and the plateau scale halves when the val loss has not improved
(rel. 1e-4) for more than 2 epochs, like ``ReduceLROnPlateau(factor=0.5, patience=2)``. A
transition resets the scale to 1, so the stage lr is exactly the lr of the stage's first epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch
from torch import nn

from ocec_engine.errors import CheckpointError


class Group(StrEnum):
    HEAD = "head"
    BACKBONE = "backbone"


def manifest(model: nn.Module, head: tuple[str, ...], trainable: tuple[str, ...]) -> dict[str, list[str]]:
    """Group name -> parameter names (registration order); only non-empty groups."""
    head_set = set(head)
    groups = {
        Group.HEAD.value: [n for n in trainable if n in head_set],
        Group.BACKBONE.value: [n for n in trainable if n not in head_set],
    }
    return {name: names for name, names in groups.items() if names}


def group_of(groups: dict[str, list[str]]) -> dict[str, str]:
    return {param: name for name, params in groups.items() for param in params}


def build_optimizer(
    model: nn.Module,
    groups: dict[str, list[str]],
    lr: float,
    weight_decay: float,
    previous: torch.optim.Optimizer | None = None,
) -> torch.optim.AdamW:
    """AdamW over ``groups``; Adam state of parameters also in ``previous`` is kept."""
    params = dict(model.named_parameters())
    param_groups = [
        {"params": [(n, params[n]) for n in names], "name": name, "lr": lr} for name, names in groups.items()
    ]
    optimizer = torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay)
    if previous is not None:
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param in previous.state:
                    optimizer.state[param] = previous.state[param]
    return optimizer


def saved_groups(state: dict[str, Any]) -> dict[str, list[str]]:
    return {str(g.get("name")): list(g.get("param_names", [])) for g in state.get("param_groups", [])}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any], source: str) -> list[str]:
    """Restore saved Adam state by parameter name; returns the names that had none (start fresh).

    torch maps optimizer state by position; we map it by the ``param_names`` saved with each group,
    so a checkpoint whose groups differ (other stage settings) still restores what it can.
    """
    try:
        by_name: dict[str, dict[str, Any]] = {}
        for group in state["param_groups"]:
            for index, name in zip(group["params"], group["param_names"], strict=True):
                if index in state["state"]:
                    by_name[name] = state["state"][index]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: optimizer_state has no parameter names ({exc})") from exc
    missing: list[str] = []
    for group in optimizer.param_groups:
        for param, name in zip(group["params"], group["param_names"], strict=True):
            saved = by_name.get(name)
            if saved is None:
                missing.append(name)
                continue
            optimizer.state[param] = {
                k: v.to(param.device) if isinstance(v, torch.Tensor) and k != "step" else v
                for k, v in saved.items()
            }
    return missing


def set_lrs(optimizer: torch.optim.Optimizer, lr: float) -> dict[str, float]:
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["initial_lr"] = lr
    return {str(g["name"]): float(g["lr"]) for g in optimizer.param_groups}


@dataclass
class LrSchedule:
    """Stage lr x run warm-up x plateau scale; plain data, saved as ``scheduler_state``."""

    base_lr: float
    warmup_epochs: int = 0
    warmup_active: bool = True  # False once the run has changed stage (no warm-up at transitions)
    scale: float = 1.0
    best: float | None = None
    num_bad_epochs: int = 0
    factor: float = 0.5
    patience: int = 2
    threshold: float = 1e-4
    min_lr: float = 0.0

    def lr_for(self, epoch: int) -> float:
        return self.base_lr * self._warmup(epoch) * self.scale

    def _warmup(self, epoch: int) -> float:
        if not self.warmup_active or self.warmup_epochs <= 0 or epoch >= self.warmup_epochs:
            return 1.0
        return epoch / self.warmup_epochs

    def step(self, epoch: int, val_loss: float) -> None:
        """End of ``epoch``: plateau bookkeeping on val loss (only after the warm-up)."""
        if self.warmup_active and epoch <= self.warmup_epochs:
            return
        if self.best is None or val_loss < self.best * (1.0 - self.threshold):
            self.best = val_loss
            self.num_bad_epochs = 0
            return
        self.num_bad_epochs += 1
        if self.num_bad_epochs > self.patience:
            new_scale = self.scale * self.factor
            if self.base_lr * new_scale >= self.min_lr:
                self.scale = new_scale
            self.num_bad_epochs = 0

    def rebase(self, base_lr: float) -> None:
        """A new stage (or an operator's lr): the stage lr applies from the next epoch, no warm-up."""
        self.base_lr = base_lr
        self.warmup_active = False
        self.scale = 1.0
        self.best = None
        self.num_bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "stage-lr x warmup x plateau",
            "base_lr": self.base_lr,
            "warmup_epochs": self.warmup_epochs,
            "warmup_active": self.warmup_active,
            "scale": self.scale,
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "factor": self.factor,
            "patience": self.patience,
            "threshold": self.threshold,
            "min_lr": self.min_lr,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LrSchedule:
        values = {k: v for k, v in state.items() if k != "kind"}
        return cls(**values)
