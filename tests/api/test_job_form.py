"""The new-job form covers the whole job spec, and its presets make valid jobs."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from api.job_form import LEFT_OUT, job_form
from api.job_presets import PRESETS
from jobstore.spec import JobCreate


def leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every dotted field name of ``model``, descending into nested sections."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        union = get_origin(info.annotation) in (Union, types.UnionType)
        inner = [a for a in get_args(info.annotation) if a is not type(None)] if union else [info.annotation]
        section = inner[0] if len(inner) == 1 and isinstance(inner[0], type) else None  # not list[...]
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
    optional = {s.name for s in job_form().sections if s.optional}  # stage 3, webhooks, race: a switch
    shown = {f.name for f in job_form().all_fields()} | optional
    assert set(preset.values) <= shown, set(preset.values) - shown
    switched_on = {name for name, value in preset.values.items() if name in optional and value is True}
    off = tuple(f"{name}." for name in optional - switched_on)
    defaults = {k: v for k, v in form_defaults().items() if not k.startswith(off)}
    fields = {k: v for k, v in preset.values.items() if k not in optional}
    body = nested({**defaults, **fields, "data_root": "B", "pretrain": "A.pt"})
    spec = JobCreate.model_validate({**{name: {} for name in switched_on}, **body})
    for name, value in fields.items():
        head, _, tail = name.partition(".")
        assert (getattr(getattr(spec, head), tail) if tail else getattr(spec, head)) == value
    for name in switched_on:
        assert getattr(spec, name) is not None


def test_a_secret_is_typed_into_a_password_input() -> None:
    fields = {f.name: f for f in job_form().all_fields()}
    assert fields["notify.secret"].secret and not fields["notify.urls"].secret
    sections = {s.name: s for s in job_form().sections}
    assert sections["notify"].optional, "webhooks are off unless switched on"
