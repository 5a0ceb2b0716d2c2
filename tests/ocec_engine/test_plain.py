"""Records become plain data: what weights_only checkpoints hold and JSON carries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ocec_engine.config import GateFailPolicy, TrainConfig
from ocec_engine.plain import plain


@dataclass
class _Record:
    policy: GateFailPolicy
    pair: tuple[int, int]
    nested: dict[Any, Any] = field(default_factory=dict)


def test_enums_become_strings_tuples_lists_and_keys_strings() -> None:
    record = _Record(GateFailPolicy.PAUSE, (1, 2), {3: [GateFailPolicy.STOP]})
    out = plain(record)
    assert out == {"policy": "pause", "pair": [1, 2], "nested": {"3": ["stop"]}}
    assert type(out["policy"]) is str and type(out["nested"]["3"][0]) is str


def test_a_train_config_round_trips_through_json() -> None:
    config = TrainConfig(data_root="d", output_dir="o")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
