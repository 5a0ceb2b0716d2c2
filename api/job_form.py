"""The new-job form, derived from the job spec's JSON schema: every field of ``JobCreate`` gets an
input with the spec's own bounds, so a field added to ``jobstore/spec.py`` shows up in the form
without a template change (``tests/api/test_job_form.py`` fails if one is missing).

Only what the schema cannot say lives here: a friendlier label, which fields are shown first (the
rest fold under "Advanced"), which inputs pick an upload, and the fields the form leaves out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from jobstore.spec import JobCreate

Kind = Literal["text", "int", "float", "bool", "choice", "json"]
Picker = Literal["", "models", "datasets"]

LABELS = {
    "name": "Name",
    "data_root": "Dataset (data_root)",
    "pretrain": "Pretrained model A (pretrain)",
    "epochs": "Epochs",
    "lr": "Learning rate",
    "batch_size": "Batch size",
    "freeze_backbone": "Freeze the backbone in stage 1 (off: full fine-tune)",
    "unfreeze_backbone_epoch": "Stage-2 gate epoch (unfreeze_backbone_epoch)",
    "augment": "Augmentation",
    "seed": "Seed",
    "priority": "Priority",
    "stage": "Start in stage",
    "use_amp": "Mixed precision (AMP)",
    "margin_method": "Margin head",
}
# A stage section's fields (stage2.*, stage3.*): the same name can mean something else there (lr).
SECTION_FIELD_LABELS = {
    "gate_f1": "Gate: previous stage's val F1 ≥",
    "on_gate_fail": "If the gate fails",
    "lr_factor": "lr factor (x base lr)",
    "lr": "lr (overrides the factor)",
    "unfreeze_ratio": "Backbone fraction unfrozen",
    "gate_deadline_epoch": "Gate deadline epoch",
    "urls": "URLs (a JSON list)",
    "secret": "Signing secret (HMAC-SHA256)",
}
SECTION_LABELS = {"stage2": "Stage 2", "stage3": "Stage 3", "notify": "Webhooks for this job"}
# Shown first, in this order, without unfolding "Advanced": what users reach for first.
BASIC = (
    "name",
    "data_root",
    "pretrain",
    "epochs",
    "lr",
    "batch_size",
    "freeze_backbone",
    "unfreeze_backbone_epoch",
    "augment",
    "seed",
    "priority",
    "stage2.gate_f1",
    "stage2.on_gate_fail",
    "stage2.lr_factor",
    "stage2.lr",
    "stage2.unfreeze_ratio",
)
PICKERS: dict[str, Picker] = {"data_root": "datasets", "pretrain": "models"}
# Stage 2's gate epoch is unfreeze_backbone_epoch; the spec refuses a stage2.epoch (jobstore.spec).
LEFT_OUT = frozenset({"stage2.epoch"})


@dataclass(frozen=True)
class FormField:
    """One input: its dotted name (``stage2.gate_f1``), kind, default and the spec's bounds."""

    name: str
    label: str
    kind: Kind
    default: Any = None
    required: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()
    bounds: dict[str, Any] = field(default_factory=dict)  # minimum, maximum, exclusiveMinimum, …
    help: str = ""
    picker: Picker = ""

    @property
    def secret(self) -> bool:
        """Typed into a password input: the status never shows it back (jobstore.spec.without_secrets)."""
        return self.name.rsplit(".", 1)[-1] == "secret"

    @property
    def advanced(self) -> bool:
        return self.name not in BASIC

    @property
    def shown_default(self) -> str:
        """The default as the input shows it ("" for none, JSON for a structured field)."""
        if self.default is None:
            return ""
        if self.kind == "json":
            return json.dumps(self.default)
        return str(self.default)


@dataclass(frozen=True)
class FormSection:
    """A nested part of the spec (``stage2``); an optional one (``stage3``) has a switch."""

    name: str
    label: str
    optional: bool
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class JobForm:
    fields: tuple[FormField, ...]
    sections: tuple[FormSection, ...]

    def all_fields(self) -> list[FormField]:
        return [*self.fields, *(f for s in self.sections for f in s.fields)]

    def basic(self) -> list[FormField]:
        return sorted((f for f in self.fields if not f.advanced), key=lambda f: BASIC.index(f.name))

    def advanced(self) -> list[FormField]:
        return [f for f in self.fields if f.advanced]


@cache
def job_form() -> JobForm:
    schema = JobCreate.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    fields: list[FormField] = []
    sections: list[FormSection] = []
    for name, prop in schema["properties"].items():
        section = _section(name, prop, defs)
        if section is not None:
            sections.append(section)
        else:
            fields.append(_field(name, name, prop, defs, name in required))
    return JobForm(tuple(fields), tuple(sections))


def _section(name: str, prop: dict[str, Any], defs: dict[str, Any]) -> FormSection | None:
    options, nullable = _options(prop)
    model = _resolve(options[0], defs) if len(options) == 1 else {}
    if model.get("type") != "object" or "properties" not in model:
        return None
    inner = set(model.get("required", ()))
    fields = tuple(
        _field(f"{name}.{key}", key, sub, defs, key in inner)
        for key, sub in model["properties"].items()
        if f"{name}.{key}" not in LEFT_OUT
    )
    return FormSection(name, SECTION_LABELS.get(name, _humane(name)), nullable, fields)


def _field(path: str, key: str, prop: dict[str, Any], defs: dict[str, Any], required: bool) -> FormField:
    options, nullable = _options(prop)
    target = _resolve(options[0], defs) if len(options) == 1 else {}
    label = (SECTION_FIELD_LABELS if "." in path else LABELS).get(key, _humane(key))
    common: dict[str, Any] = {
        "default": prop.get("default"),
        "required": required,
        "nullable": nullable,
        "help": str(prop.get("description", target.get("description", ""))),
        "picker": PICKERS.get(path, ""),
    }
    kind = _kind(target)
    if kind == "choice":
        return FormField(path, label, kind, choices=tuple(map(str, target["enum"])), **common)
    bounds = {k: target[k] for k in _BOUNDS if k in target}
    return FormField(path, label, kind, bounds=bounds, **common)


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern")
_KINDS: dict[str, Kind] = {"integer": "int", "number": "float", "boolean": "bool", "string": "text"}


def _kind(target: dict[str, Any]) -> Kind:
    if "enum" in target:
        return "choice"
    return _KINDS.get(str(target.get("type")), "json")  # lists, maps, unions: typed as JSON


def _options(prop: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The non-null alternatives of a property, and whether null is one of them."""
    options = prop.get("anyOf", [prop])
    kept = [o for o in options if o.get("type") != "null"]
    return kept, len(kept) < len(options)


def _resolve(option: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = option.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: dict[str, Any] = defs[ref.removeprefix("#/$defs/")]
        return resolved
    return option


def _humane(name: str) -> str:
    return name.replace("_", " ").capitalize()
