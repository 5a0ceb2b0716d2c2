"""A default the docs quote next to a setting's name — `stage2.gate_f1` (0.80), `check_every_batches`
batches (default 20) — is the one the code declares (jobstore.spec; the engine's own settings from
TrainConfig), so a changed default cannot leave README.md or docs/ behind; likewise the fork's list
of stage-2 overrides."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from api.schemas import StageOverrides
from jobstore.spec import JobSpec, Stage3Spec, StageGateSpec
from ocec_engine.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# `name`, `stageN.name` or `lr TIMES stageN.name`, a few words of the same table cell or phrase,
# then "(0.05" or "(default 20" and the end of the number
TIMES = "\N{MULTIPLICATION SIGN}"
QUOTED = re.compile(
    rf"`(?:lr {TIMES} )?(?:(stage[23])\.)?([a-z_0-9]+)`[^`(|\n]{{0,20}}\((?:default )?(\d[\d.e-]*)(?=[):,])"
)
# "`stage2` overrides (`gate_f1`, `lr`, ...;" in the fork's description
OVERRIDE_LIST = re.compile(r"`stage2`\s+overrides \(([^;)]*)")


def declared() -> dict[str, Any]:
    engine = TrainConfig(data_root="", output_dir="")
    values: dict[str, Any] = {f.name: getattr(engine, f.name) for f in dataclasses.fields(TrainConfig)}
    values |= JobSpec(data_root="d").model_dump()
    for section, model in (("stage2", StageGateSpec), ("stage3", Stage3Spec)):
        values |= {f"{section}.{name}": value for name, value in model().model_dump().items()}
    return values


def quoted() -> list[tuple[str, str, str]]:
    """(file, setting, number) for each default quoted in the docs."""
    found = []
    for path in DOCS:
        for section, name, number in QUOTED.findall(path.read_text(encoding="utf-8")):
            found.append(
                (path.relative_to(REPO).as_posix(), f"{section}.{name}" if section else name, number)
            )
    return found


def test_the_defaults_the_docs_quote_are_the_declared_ones() -> None:
    defaults = declared()
    checked = [(where, name, number) for where, name, number in quoted() if name in defaults]
    wrong = [(where, name, number) for where, name, number in checked if float(number) != defaults[name]]
    assert wrong == [], "docs quote a default the code does not declare"
    assert {"stage2.gate_f1", "stage2.lr_factor", "stage3.lr_factor"} <= {name for _, name, _ in checked}


def test_the_docs_list_the_stage2_overrides_a_fork_takes() -> None:
    lists = {
        path.relative_to(REPO).as_posix(): sorted(re.findall(r"`([a-z_0-9]+)`", names))
        for path in DOCS
        for names in OVERRIDE_LIST.findall(path.read_text(encoding="utf-8"))
    }
    assert set(lists) >= {"docs/api.md", "docs/steering.md"}
    assert lists == dict.fromkeys(lists, sorted(StageOverrides.model_fields))
