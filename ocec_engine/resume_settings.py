"""What a resume keeps and what it changes (docs/engine.md, "Resume").

A resume continues the run its checkpoint belongs to: the checkpoint's own ``train_config`` is the
base and only the settings the caller gives explicitly replace it (``merge_settings``; the CLI passes
the flags that were typed). ``setting_changes`` then lists every training setting that differs
from the checkpoint's, which the engine prints and records (notes, a ``StageEvent`` and the
checkpoint's ``setting_changes``). Bookkeeping (paths, the one-shot resume fields, polling) is not a
change of the run; neither is the architecture, which always comes from the checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ocec_engine import checkpoint
from ocec_engine.config import TrainConfig, default_stage3
from ocec_engine.errors import CheckpointError, EngineError

# fields that say where and how a run is kept, not how it trains
BOOKKEEPING = frozenset(
    {
        "data_root",  # a moved dataset is compared by content (the data fingerprint note)
        "output_dir",
        "pretrain",
        "resume",
        "resume_stage",
        "resume_commands",
        "stage",  # the start stage of the first run; a resume continues the checkpoint's stage
        "check_every_batches",
        "keep_epoch_checkpoints",
        "retention_data_root",  # only evaluated, never trained on
        "evaluate",
        "checkpoint_every",
    }
)
ARCHITECTURE = ("base_channels", "num_blocks", "dropout", "margin_method", "image_size")
SECTIONS = ("stage2", "stage3")


def saved_settings(path: str) -> dict[str, Any]:
    """The ``train_config`` stored in a training checkpoint."""
    saved = checkpoint.load(path).get("train_config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: no train_config to resume the run's settings from")
    return dict(saved)


def merge_settings(base: Mapping[str, Any], given: Mapping[str, Any]) -> TrainConfig:
    """``base`` with the ``given`` settings on top; ``stage2`` / ``stage3`` merge field by field.

    ``given["stage3"] = None`` removes stage 3; a ``stage3`` section given for a run without one
    starts from the stage-3 defaults.
    """
    merged = dict(base)
    for key, value in given.items():
        if key not in SECTIONS or value is None:
            merged[key] = value
            continue
        section = merged.get(key) or (_stage3_defaults() if key == "stage3" else {})
        merged[key] = {**dict(section), **dict(value)}
    try:
        return TrainConfig.from_dict(merged)
    except (TypeError, ValueError) as exc:
        raise EngineError(f"these settings do not make a run: {exc}") from exc


def _stage3_defaults() -> dict[str, Any]:
    return dataclasses.asdict(default_stage3())


def setting_changes(saved: Mapping[str, Any], config: TrainConfig) -> dict[str, dict[str, Any]]:
    """``{"lr": {"from": 1e-4, "to": 5e-5}, "stage2.gate_f1": {...}}``: training settings of
    ``config`` that differ from the checkpoint's ``saved`` ones (fields it lacks are skipped)."""
    now = config.to_dict()
    skipped = BOOKKEEPING | set(ARCHITECTURE)
    changes: dict[str, dict[str, Any]] = {}
    for key in now:
        if key in skipped or key not in saved:
            continue
        before, after = saved[key], now[key]
        if key in SECTIONS and isinstance(before, dict) and isinstance(after, dict):
            for sub in sorted(set(before) | set(after)):
                if before.get(sub) != after.get(sub):
                    changes[f"{key}.{sub}"] = {"from": before.get(sub), "to": after.get(sub)}
        elif before != after:
            changes[key] = {"from": before, "to": after}
    return changes


def describe_changes(changes: Mapping[str, Mapping[str, Any]]) -> str:
    """``lr 0.0001 -> 5e-05, seed 42 -> 7``"""
    return ", ".join(f"{key} {_show(c['from'])} -> {_show(c['to'])}" for key, c in changes.items())


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)
