"""The new-job form covers the whole job spec, and its presets make valid jobs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from api.job_form import LEFT_OUT, job_form
from api.job_presets import PRESETS
from jobstore.spec import JobCreate


def leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every dotted field name of ``model``, descending into nested sections."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        inner = [a for a in getattr(info.annotation, "__args__", (info.annotation,)) if a is not type(None)]
        section = inner[0] if len(inner) == 1 and isinstance(inner[0], type) else None
        if section is not None and issubclass(section, BaseModel):
            names |= leaves(section, f"{prefix}{name}.")
        else:
            names.add(f"{prefix}{name}")
    return names


def test_every_spec_field_has_an_input() -> None:
    shown = {f.name for f in job_form().all_fields()}
    assert shown == leaves(JobCreate) - LEFT_OUT
    assert leaves(JobCreate) >= LEFT_OUT, "a left-out field that no longer exists"


def test_inputs_carry_the_spec_bounds_and_defaults() -> None:
    fields = {f.name: f for f in job_form().all_fields()}
    assert fields["lr"].bounds == {"exclusiveMinimum": 0, "maximum": 1.0} and fields["lr"].default == 1e-4
    assert fields["data_root"].required and fields["data_root"].picker == "datasets"
    on_fail = fields["stage2.on_gate_fail"]
    assert on_fail.kind == "choice" and "proceed" in on_fail.choices
    assert fields["stage2.lr"].nullable and not fields["stage2.lr"].advanced
    assert fields["image_size"].bounds["pattern"].startswith("^") and fields["image_size"].advanced


def form_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in job_form().all_fields() if f.default is not None}


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in flat.items():
        *path, last = name.split(".")
        target = body
        for key in path:
            target = target.setdefault(key, {})
        target[last] = value
    return body


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.key)
def test_each_preset_names_real_fields_and_makes_a_valid_job(preset: Any) -> None:
    shown = {f.name for f in job_form().all_fields()}
    assert set(preset.values) <= shown, set(preset.values) - shown
    defaults = {k: v for k, v in form_defaults().items() if not k.startswith("stage3.")}  # stage 3 is off
    spec = JobCreate.model_validate(nested({**defaults, **preset.values, "data_root": "B"}))
    for name, value in preset.values.items():
        head, _, tail = name.partition(".")
        assert (getattr(getattr(spec, head), tail) if tail else getattr(spec, head)) == value


def test_a_secret_is_typed_into_a_password_input() -> None:
    fields = {f.name: f for f in job_form().all_fields()}
    assert fields["notify.secret"].secret and not fields["notify.urls"].secret
    sections = {s.name: s for s in job_form().sections}
    assert sections["notify"].optional, "webhooks are off unless switched on"
