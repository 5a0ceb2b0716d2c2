"""The body of ``POST /jobs`` from a spec file (JSON or YAML), flags and ``--set key=value``.

Precedence: the file, then the named flags, then ``--set`` (dotted keys reach nested sections:
``--set stage2.on_gate_fail=pause``). The server validates everything (a 422 names the field).
``upload:<id>`` as ``--pretrain`` / ``--data-root`` names an upload: the client looks up its path.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocec_jobs.cli.client.args import usage

UPLOAD_PREFIX = "upload:"


@dataclass(frozen=True)
class SpecFlag:
    flag: str
    key: str  # dotted path in the body
    kind: Any  # argparse type (str, int, float) or "flag" for store_true
    help: str


SPEC_FLAGS = (
    SpecFlag("--name", "name", str, "job name"),
    SpecFlag("--data-root", "data_root", str, "dataset, relative to the server's data root, or upload:<id>"),
    SpecFlag("--pretrain", "pretrain", str, "model A checkpoint, relative to the model root, or upload:<id>"),
    SpecFlag("--stage", "stage", int, "stage to start in (1 or 2)"),
    SpecFlag("--lr", "lr", float, "base learning rate"),
    SpecFlag("--epochs", "epochs", int, "epoch budget"),
    SpecFlag("--batch-size", "batch_size", int, "batch size"),
    SpecFlag(
        "--unfreeze-backbone-epoch", "unfreeze_backbone_epoch", int, "first epoch the stage-2 gate is read"
    ),
    SpecFlag("--margin-method", "margin_method", str, "none, cosface or arcface"),
    SpecFlag("--augment", "augment", str, "none, light or ocec"),
    SpecFlag("--seed", "seed", int, "random seed"),
    SpecFlag("--priority", "priority", int, "queue priority (-100..100)"),
    SpecFlag("--gate-f1", "stage2.gate_f1", float, "stage-2 gate: val F1 needed"),
    SpecFlag("--unfreeze-ratio", "stage2.unfreeze_ratio", float, "stage 2: share of the backbone unfrozen"),
    SpecFlag("--lr-factor", "stage2.lr_factor", float, "stage 2: lr = lr x this"),
    SpecFlag("--stage2-lr", "stage2.lr", float, "stage 2: an explicit lr instead of the factor"),
    SpecFlag("--on-gate-fail", "stage2.on_gate_fail", str, "keep-trying, pause, proceed or stop"),
    SpecFlag("--gate-deadline-epoch", "stage2.gate_deadline_epoch", int, "keep-trying ends here"),
    SpecFlag("--use-amp", "use_amp", "flag", "mixed precision on a GPU"),
    SpecFlag("--no-freeze-backbone", "freeze_backbone", "flag-false", "train the whole model from epoch 1"),
    SpecFlag("--race-keep", "race.keep_fraction", float, "race: share of candidates kept at each rung"),
    SpecFlag("--race-budget", "race.budget_sample_epochs", int, "race: total budget in sample-epochs"),
    SpecFlag("--race-floor", "race.retention_floor", float, "race: least F1 on the source domain A"),
)


def add_spec_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spec",
        type=Path,
        default=None,
        metavar="FILE",
        help="job spec file, JSON or YAML (flags override it)",
    )
    group = parser.add_argument_group("job spec (docs/api.md: POST /jobs)")
    for item in SPEC_FLAGS:
        dest = _dest(item)
        if item.kind == "flag":
            group.add_argument(
                item.flag, dest=dest, action="store_const", const=True, default=None, help=item.help
            )
        elif item.kind == "flag-false":
            group.add_argument(
                item.flag, dest=dest, action="store_const", const=False, default=None, help=item.help
            )
        else:
            metavar = item.flag.lstrip("-").upper().replace("-", "_")
            group.add_argument(
                item.flag, dest=dest, type=item.kind, default=None, metavar=metavar, help=item.help
            )
    group.add_argument(
        "--race",
        dest="spec_race",
        action="store_true",
        help="race the stage-2 recipes from one shared stage 1 (docs/race.md; default candidates)",
    )
    group.add_argument(
        "--race-rungs", dest="spec_race_rungs", type=_epochs, metavar="E1,E2", help="race: epochs to halve at"
    )
    group.add_argument(
        "--set",
        dest="spec_set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other spec field (dotted for sections; VALUE is JSON, else a string), repeatable",
    )


def spec_from(args: argparse.Namespace) -> dict[str, Any]:
    body = load_spec(args.spec) if args.spec else {}
    if getattr(args, "spec_race", False) and not isinstance(body.get("race"), dict):
        body["race"] = {}
    if getattr(args, "spec_race_rungs", None) is not None:
        put(body, "race.rungs", args.spec_race_rungs)
    for item in SPEC_FLAGS:
        value = getattr(args, _dest(item))
        if value is not None:
            put(body, item.key, value)
    for assignment in args.spec_set:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise usage(f"--set {assignment!r}: expected KEY=VALUE")
        put(body, key.strip(), _value(raw))
    if "data_root" not in body:
        raise usage("a job needs a dataset: --data-root PATH (or data_root in --spec)")
    return body


def load_spec(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise usage(f"cannot read the spec file {path}: {exc.strerror or exc}") from exc
    data = _parse(path, text)
    if not isinstance(data, dict):
        raise usage(f"{path}: a job spec is a mapping of fields, found {type(data).__name__}")
    return data


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() not in (".yaml", ".yml"):
        try:
            return json.loads(text)
        except ValueError as exc:
            if path.suffix.lower() == ".json":
                raise usage(f"{path}: not valid JSON ({exc})") from exc
    try:
        import yaml
    except ImportError as exc:
        raise usage(f"{path}: reading YAML needs PyYAML (pip install pyyaml), or use JSON") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise usage(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc


def put(body: dict[str, Any], dotted: str, value: Any) -> None:
    *sections, last = dotted.split(".")
    target = body
    for section in sections:
        nested = target.get(section)
        if not isinstance(nested, dict):
            nested = target[section] = {}
        target = nested
    target[last] = value


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _epochs(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected epochs like 6,9, got {text!r}") from exc


def _dest(item: SpecFlag) -> str:
    return "spec_" + item.flag.lstrip("-").replace("-", "_")


def upload_reference(value: Any) -> str | None:
    """The upload id in ``upload:<id>``, else None."""
    if isinstance(value, str) and value.startswith(UPLOAD_PREFIX):
        return value[len(UPLOAD_PREFIX) :].strip()
    return None
