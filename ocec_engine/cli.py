"""``python -m ocec_engine train | make-data | export | evaluate`` — the engine's own command line.

Flag names follow the public OCEC CLI, so the progressive fine-tuning guide's command runs as is:

    python -m ocec_engine train --data_root B --output_dir runs/x --pretrain A.pt --epochs 110 \\
        --batch_size 1024 --lr 1e-4 --freeze_backbone --unfreeze_backbone_epoch 11 \\
        --margin_method cosface --use_amp

Engine errors print one line (``error: ...``) and exit with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocec_engine.config import (
    AugmentPolicy,
    DeviceChoice,
    GateFailPolicy,
    MarginMethod,
    StageGateConfig,
    TrainConfig,
    default_stage3,
)
from ocec_engine.errors import EngineError
from ocec_engine.hooks import Outcome

log = logging.getLogger("ocec_engine")
EXIT_ERROR = 2
EXIT_CODES = {
    Outcome.COMPLETED: 0,
    Outcome.STOPPED: 3,
    Outcome.AWAITING_DECISION: 4,
    Outcome.PAUSED: 5,
    Outcome.CANCELLED: 5,
    Outcome.PREEMPTED: 5,
}
# as OCEC: a fresh run without --freeze_backbone is a full fine-tune
_DEFAULTS = TrainConfig(data_root="", output_dir="", freeze_backbone=False)
_S2 = StageGateConfig()
_S3 = default_stage3()
_POLICIES = [p.value for p in GateFailPolicy]

EPILOG = """\
exit codes: 0 completed (also when the optional stage 3 never opened: a note says so); 2 error
(one line on stderr); 3 stopped by a stage gate;
4 awaiting a decision (gate policy "pause"); 5 paused / cancelled / interrupted (Ctrl-C writes
interrupt.pt; resume with --resume OUTPUT_DIR/interrupt.pt).
files in --output_dir: last.pt, best.pt, best.onnx, stage{N}_entry.pt, epochs/epoch_NNNN.pt,
interrupt.pt, metrics.jsonl (one row per epoch), events.jsonl, tensorboard/ (event files for
tensorboard --logdir). Details: docs/engine.md.
"""


def image_size(text: str) -> tuple[int, int]:
    """'32x64' -> (32, 64) (height first, as OCEC); '48' -> (48, 48)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must be HxW or S, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"image size must be HxW or S, got {text!r}")
    return values[0], values[1]


def _train_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="train or resume a progressive fine-tuning run",
        description="Progressive fine-tuning: stage 1 trains the head on a frozen backbone; stage 2 "
        "unfreezes the last part of the backbone behind a val-F1 gate; optional stage 3 the whole backbone. "
        "With --resume every setting not given here comes from the checkpoint; a given one that "
        "differs is printed and recorded as a change of the run.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Every setting defaults to None (not given): a fresh run fills in the defaults named in the help,
    # a resume the checkpoint's own settings (ocec_engine.resume_settings).
    d = _DEFAULTS
    io = p.add_argument_group("data and output")
    io.add_argument(
        "--data_root",
        help="OCEC parquet file/folder, or image folders {train,val}/{open,closed}/ or {open,closed}/ "
        "(required unless --resume)",
    )
    io.add_argument(
        "--output_dir",
        help="run folder (checkpoints, metrics.jsonl, events.jsonl); required unless --resume",
    )
    io.add_argument(
        "--val_ratio",
        type=float,
        help=f"val share for data without a split (seeded, stratified; default {d.val_ratio})",
    )
    io.add_argument(
        "--test_fraction",
        type=float,
        help="without a test split in the data: hold out this seeded share of each class of train and "
        f"val as the test split, never trained on (default {d.test_fraction})",
    )
    io.add_argument(
        "--retention_data_root",
        help="the source domain A: evaluated before and after the run, so forgetting is a number",
    )
    io.add_argument(
        "--evaluate",
        action=argparse.BooleanOptionalAction,
        help="the run's own evaluation into OUTPUT_DIR/evaluation/ (default on; docs/evaluation.md)",
    )
    io.add_argument(
        "--image_size", type=image_size, help="HxW, height first (default {}x{})".format(*d.image_size)
    )
    io.add_argument(
        "--augment",
        choices=[a.value for a in AugmentPolicy],
        help="per-batch augmentation policy, in [0,1] pixels before normalisation, at OCEC's "
        f"effective magnitudes (default {d.augment.value})",
    )
    start = p.add_argument_group("start and resume")
    start.add_argument(
        "--pretrain", help="weights to start from (model A): OCEC checkpoint, ours, or a bare state dict"
    )
    start.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue a run from one of its checkpoints (full state; architecture and every "
        "setting not given here from the file)",
    )
    start.add_argument(
        "--stage",
        type=int,
        choices=[1, 2, 3],
        help="stage to start in (default 1); with --resume: force this stage at the first epoch",
    )
    run = p.add_argument_group("optimisation")
    run.add_argument("--epochs", type=int, help=f"total epochs, all stages together (default {d.epochs})")
    run.add_argument("--batch_size", type=int, help=f"default {d.batch_size}")
    run.add_argument("--lr", type=float, help=f"stage-1 (base) learning rate, AdamW (default {d.lr:g})")
    run.add_argument(
        "--weight_decay",
        type=float,
        help=f"AdamW weight decay on trainable params (default {d.weight_decay:g})",
    )
    run.add_argument(
        "--warmup_epochs",
        type=int,
        help=f"linear lr warm-up at the run start only, never at a stage change (default {d.warmup_epochs})",
    )
    run.add_argument(
        "--seed", type=int, help=f"data order, augmentation and dropout derive from it (default {d.seed})"
    )
    run.add_argument(
        "--use_amp",
        action=argparse.BooleanOptionalAction,
        help="mixed precision on CUDA (a no-op with a notice on CPU; default off)",
    )
    run.add_argument("--device", choices=[c.value for c in DeviceChoice], help=f"default {d.device.value}")
    run.add_argument(
        "--check_every_batches",
        type=int,
        help=f"poll for stop requests every N batches (default {d.check_every_batches})",
    )
    run.add_argument(
        "--keep_epoch_checkpoints",
        type=int,
        help=f"keep the newest N epochs/epoch_NNNN.pt (0 = all; default {d.keep_epoch_checkpoints})",
    )
    run.add_argument(
        "--checkpoint_every",
        type=int,
        help="write epochs/epoch_NNNN.pt every N epochs (last, best and stage entries always; "
        f"default {d.checkpoint_every})",
    )
    model = p.add_argument_group("model (fresh runs; a resume uses the checkpoint's)")
    model.add_argument(
        "--margin_method", choices=[m.value for m in MarginMethod], help=f"default {d.margin_method.value}"
    )
    model.add_argument("--base_channels", type=int, help=f"default {d.base_channels}")
    model.add_argument("--num_blocks", type=int, help=f"default {d.num_blocks}")
    model.add_argument("--dropout", type=float, help=f"default {d.dropout}")
    model.add_argument("--arch_variant", choices=["baseline"], help="OCEC's baseline CNN (the only variant)")
    s2 = p.add_argument_group("stages 1 and 2")
    s2.add_argument(
        "--freeze_backbone",
        action=argparse.BooleanOptionalAction,
        help="progressive fine-tuning: stage 1 trains only the head. Without it (fresh runs): a plain "
        "full fine-tune (everything at --lr, no stages)",
    )
    s2.add_argument(
        "--unfreeze_backbone_epoch",
        type=int,
        help="U: first epoch at which the stage-2 gate is read (none: stage 2 only by --stage/forcing)",
    )
    s2.add_argument(
        "--unfreeze_backbone_ratio",
        type=float,
        help="share of backbone parameters unfrozen in stage 2, counted from the back in whole "
        f"blocks (default {_S2.unfreeze_ratio})",
    )
    s2.add_argument(
        "--stage2_gate_f1",
        type=float,
        help=f"enter stage 2 when the previous epoch's val F1 >= this (default {_S2.gate_f1})",
    )
    s2.add_argument("--stage2_lr", type=float, help="explicit stage-2 lr (default: lr x --stage2_lr_factor)")
    s2.add_argument("--stage2_lr_factor", type=float, help=f"default {_S2.lr_factor}")
    s2.add_argument(
        "--on_gate_fail",
        choices=_POLICIES,
        help="when the gate fails: keep-trying (each epoch until the deadline, then stop), pause "
        f"(checkpoint, await a decision), proceed, stop (default {_S2.on_gate_fail.value})",
    )
    s2.add_argument(
        "--gate_deadline_epoch", type=int, help="keep-trying stops after this epoch (default: the last epoch)"
    )
    s3 = p.add_argument_group("stage 3 (optional; any --stage3_* flag enables it)")
    s3.add_argument(
        "--stage3",
        action=argparse.BooleanOptionalAction,
        help="enable stage 3: unfreeze the whole backbone behind its own gate (--no-stage3: drop it "
        "on a resume). A stage-3 gate that never opens ends the run completed, with a note",
    )
    s3.add_argument(
        "--stage3_epoch",
        type=int,
        help="earliest epoch for the stage-3 gate (default: after one stage-2 epoch)",
    )
    s3.add_argument("--stage3_gate_f1", type=float, help=f"default {_S3.gate_f1}")
    s3.add_argument("--stage3_lr", type=float, help="explicit stage-3 lr (default: lr x --stage3_lr_factor)")
    s3.add_argument("--stage3_lr_factor", type=float, help=f"default {_S3.lr_factor}")
    s3.add_argument(
        "--stage3_unfreeze_ratio",
        type=float,
        help=f"default {_S3.unfreeze_ratio} (whole backbone, stem included)",
    )
    s3.add_argument("--stage3_on_gate_fail", choices=_POLICIES, help=f"default {_S3.on_gate_fail.value}")
    s3.add_argument("--stage3_gate_deadline_epoch", type=int, help="default: the last epoch")
    ui = p.add_argument_group("output")
    ui.add_argument("--no_progress", action="store_true", help="no progress bar (summary lines only)")
    ui.add_argument(
        "--dry_run",
        action="store_true",
        help="print the stage plan (units, unfrozen share, lrs, gates) and exit",
    )
    ui.add_argument("--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=cmd_train)


# flag -> TrainConfig field, for the settings given on the command line
_TOP = (
    "data_root", "output_dir", "val_ratio", "image_size", "augment", "pretrain", "epochs", "batch_size",
    "lr", "weight_decay", "warmup_epochs", "seed", "use_amp", "device", "check_every_batches",
    "keep_epoch_checkpoints", "checkpoint_every", "margin_method", "base_channels", "num_blocks",
    "dropout", "freeze_backbone", "unfreeze_backbone_epoch", "test_fraction", "retention_data_root",
    "evaluate",
)  # fmt: skip
_STAGE2 = {
    "stage2_gate_f1": "gate_f1", "unfreeze_backbone_ratio": "unfreeze_ratio", "stage2_lr_factor": "lr_factor",
    "stage2_lr": "lr", "on_gate_fail": "on_gate_fail", "gate_deadline_epoch": "gate_deadline_epoch",
}  # fmt: skip
_STAGE3 = ("epoch", "gate_f1", "lr", "lr_factor", "unfreeze_ratio", "on_gate_fail", "gate_deadline_epoch")


def given_settings(a: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields set on the command line (flags left out are absent)."""
    given: dict[str, Any] = {k: getattr(a, k) for k in _TOP if getattr(a, k) is not None}
    if "image_size" in given:
        given["image_size"] = list(given["image_size"])
    stage2 = {field: getattr(a, flag) for flag, field in _STAGE2.items() if getattr(a, flag) is not None}
    if stage2:
        given["stage2"] = stage2
    stage3 = {k: getattr(a, f"stage3_{k}") for k in _STAGE3 if getattr(a, f"stage3_{k}") is not None}
    if a.stage3 is False:
        given["stage3"] = None
    elif a.stage3 or stage3:
        given["stage3"] = stage3
    return given


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """A fresh run: the given flags over the defaults. ``--resume``: over the checkpoint's settings."""
    from ocec_engine.resume_settings import ARCHITECTURE, merge_settings, saved_settings

    given = given_settings(a)
    if a.resume:
        ignored = [f"--{k}" for k in ARCHITECTURE if k in given]
        if ignored:
            log.warning("resume: %s ignored: the architecture comes from the checkpoint", ", ".join(ignored))
        given.update(resume=a.resume, resume_stage=a.stage, resume_commands=True)
        return merge_settings(saved_settings(a.resume), given)
    for flag in ("data_root", "output_dir"):
        if flag not in given:
            raise EngineError(f"--{flag} is required (except with --resume, which takes the checkpoint's)")
    given["stage"] = a.stage or 1
    return merge_settings(_DEFAULTS.to_dict(), given)


def cmd_train(a: argparse.Namespace) -> int:
    from ocec_engine.console import ConsoleHooks
    from ocec_engine.hooks import CompositeHooks
    from ocec_engine.loop import train
    from ocec_engine.tensorboard import open_tensorboard

    config = config_from_args(a)
    if a.dry_run:
        print(json.dumps(plan_preview(config), indent=2))
        return 0
    console = ConsoleHooks(config.output_dir, progress=not a.no_progress, handle_sigint=True)
    tensorboard, notice = open_tensorboard(config.output_dir)  # <output_dir>/tensorboard
    if notice:
        print(notice, file=sys.stderr)
    result = train(config, CompositeHooks(console, tensorboard))
    return EXIT_CODES[result.outcome]


def plan_preview(config: TrainConfig) -> dict[str, Any]:
    """The stage plan of ``config`` without data or training (model architecture from the config)."""
    from ocec_engine.bootstrap import validate_config
    from ocec_engine.model import ModelConfig, build_model
    from ocec_engine.stages import build_plan

    validate_config(config)
    model = build_model(
        ModelConfig(
            config.base_channels, config.num_blocks, config.dropout, config.margin_method, config.image_size
        )
    )
    plan = build_plan(model, config)
    preview = plan.describe()
    for stage, spec in plan.stages.items():
        preview["stages"][str(stage)]["trainable"] = list(spec.trainable)
    return preview


def _make_data_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "make-data",
        help="write a synthetic eye-crop dataset (OCEC parquet)",
        description="Synthetic open/closed eye crops in the OCEC parquet layout: domain A (source) or "
        "B (shifted: lighting, blur, noise, glasses glare, eye shapes).",
    )
    p.add_argument(
        "--domain", choices=["A", "B"], required=True, help="A = source domain, B = shifted target domain"
    )
    p.add_argument("--n", type=int, required=True, help="number of images (balanced classes)")
    p.add_argument("--out", required=True, help="folder; writes OUT/dataset.parquet")
    p.add_argument("--seed", type=int, default=0, help="default %(default)s")
    p.add_argument(
        "--shift", type=float, help="strength of the B-domain effects in [0, 1] (default: 0 for A, 1 for B)"
    )
    p.add_argument(
        "--val_fraction",
        type=float,
        default=0.25,
        help="share of each class in the val split (default %(default)s)",
    )
    p.set_defaults(func=cmd_make_data)


def cmd_make_data(a: argparse.Namespace) -> int:
    from ocec_engine.synthetic import make_dataset

    try:
        path = make_dataset(
            Path(a.out), domain=a.domain, n=a.n, seed=a.seed, shift=a.shift, val_fraction=a.val_fraction
        )
    except ValueError as exc:
        raise EngineError(str(exc)) from exc
    print(path)
    return 0


def _export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX (input 1x3xHxW normalised, output P(open))",
        description="Export the model of a checkpoint (ours, OCEC's) to ONNX as OCEC deploys it.",
    )
    p.add_argument("ckpt", metavar="CKPT", help="checkpoint file (best.pt, last.pt, an OCEC .pt)")
    p.add_argument("--onnx", required=True, help="output .onnx path")
    p.add_argument("--opset", type=int, default=17, help="default %(default)s")
    p.set_defaults(func=cmd_export)


def cmd_export(a: argparse.Namespace) -> int:
    from ocec_engine.export import export_checkpoint

    print(export_checkpoint(a.ckpt, a.onnx, opset=a.opset))
    return 0


def _evaluate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on a dataset split: report.json, worst.png (docs/evaluation.md)",
        description="Evaluate a checkpoint (any format the engine loads) or an ONNX export on a dataset "
        "split: F1/precision/recall/accuracy at 0.5 and at a chosen threshold, ROC-AUC, PR-AUC, EER, "
        "thresholds, calibration, bootstrap intervals and the most confidently wrong images.",
    )
    p.add_argument("model", metavar="CHECKPOINT", help="checkpoint (.pt) or ONNX export (.onnx)")
    p.add_argument("--data_root", required=True, help="OCEC parquet or image folders")
    p.add_argument("--split", choices=["val", "test", "all"], default="all", help="default %(default)s")
    p.add_argument("--out", help="output folder (default: eval_<CHECKPOINT name> here)")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--threshold", type=float, help="a fixed decision threshold on P(open)")
    rule.add_argument(
        "--target_precision_closed", type=float, help="the threshold that reaches this precision for closed"
    )
    rule.add_argument(
        "--target_recall_closed", type=float, help="the threshold that reaches this recall for closed"
    )
    p.add_argument("--top_k", type=int, default=16, help="worst images kept (default %(default)s)")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples, 0 = none (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default %(default)s)")
    split = p.add_argument_group("the dataset's split settings (as the training job's)")
    split.add_argument("--val_ratio", type=float, default=0.2, help="default %(default)s")
    split.add_argument("--split_seed", type=int, default=42, help="default %(default)s")
    split.add_argument("--test_fraction", type=float, default=0.0, help="default %(default)s")
    p.set_defaults(func=cmd_evaluate)


def threshold_choice(a: argparse.Namespace) -> tuple[str, float | None]:
    """(threshold_rule, target) from the mutually exclusive flags; F1-optimal when none is given."""
    if a.threshold is not None:
        return "fixed", a.threshold
    if a.target_precision_closed is not None:
        return "precision_closed", a.target_precision_closed
    if a.target_recall_closed is not None:
        return "recall_closed", a.target_recall_closed
    return "f1", None


def cmd_evaluate(a: argparse.Namespace) -> int:
    from ocec_engine.evaluation import evaluate_to_dir
    from ocec_engine.evaluation.summary import summary_lines

    rule, target = threshold_choice(a)
    model = Path(a.model)
    out = Path(a.out) if a.out else Path(f"eval_{model.stem}")
    report = evaluate_to_dir(
        model, Path(a.data_root), out, split=a.split, threshold_rule=rule, target=target, top_k=a.top_k,
        bootstrap=a.bootstrap, seed=a.seed, val_ratio=a.val_ratio, split_seed=a.split_seed,
        test_fraction=a.test_fraction,
    )  # fmt: skip
    print("\n".join(summary_lines(report)))
    print(f"report: {out / 'report.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ocec_engine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,make-data,export,evaluate}")
    _train_parser(sub)
    _make_data_parser(sub)
    _export_parser(sub)
    _evaluate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
