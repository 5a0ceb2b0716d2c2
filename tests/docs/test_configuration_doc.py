"""docs/configuration.md cannot go stale: its settings table is what scripts/settings_table.py generates
from the settings classes, and every environment variable the code reads is documented there."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from api.settings import ApiSettings

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "configuration.md"
PRODUCT = ("api", "jobstore", "worker", "ocec_engine", "ocec_jobs")
NAMES = r"OCEC_[A-Z0-9_]+|DATABASE_URL|REDIS_URL|CUDA_VISIBLE_DEVICES"
VARIABLE = re.compile(rf"\b(?:{NAMES})\b")
DOCUMENTED = re.compile(rf"`((?:{NAMES}))`")
# ocec_engine.weights.SourceFormat.OCEC_JOBS, a checkpoint format name; ocec_engine.augment.OCEC_UNIT,
# a constant
NOT_VARIABLES = {"OCEC_JOBS", "OCEC_UNIT"}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_table", REPO / "scripts" / "settings_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_table_is_generated_from_the_settings_classes() -> None:
    tool = generator()
    assert tool.current(DOC.read_text(encoding="utf-8")) == tool.table(), (
        "docs/configuration.md is stale: run `python scripts/settings_table.py --write`"
    )


def test_every_setting_says_what_it_does() -> None:
    assert [name for name, field in ApiSettings.model_fields.items() if not field.description] == []


def test_every_variable_the_code_reads_is_documented_and_no_other() -> None:
    used = set()
    for package in PRODUCT:
        for path in (REPO / package).rglob("*.py"):
            used |= set(VARIABLE.findall(path.read_text(encoding="utf-8")))
    used -= NOT_VARIABLES
    used |= {f"OCEC_{name.upper()}" for name in ApiSettings.model_fields}  # read through the prefix
    documented = set(DOCUMENTED.findall(DOC.read_text(encoding="utf-8")))
    assert sorted(used - documented) == [], "undocumented: add them to docs/configuration.md"
    assert sorted(documented - used) == [], "documented but never read: remove them"
