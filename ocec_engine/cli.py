"""``python -m ocec_engine train | make-data | export`` — the engine's own command line.

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

EXIT_ERROR = 2
EXIT_CODES = {
    Outcome.COMPLETED: 0,
    Outcome.STOPPED: 3,
    Outcome.AWAITING_DECISION: 4,
    Outcome.PAUSED: 5,
    Outcome.CANCELLED: 5,
    Outcome.PREEMPTED: 5,
}
_DEFAULTS = TrainConfig(data_root="", output_dir="")
_S2 = StageGateConfig()
_S3 = default_stage3()
_POLICIES = [p.value for p in GateFailPolicy]

EPILOG = """\
exit codes: 0 completed; 2 error (one line on stderr); 3 stopped by a stage gate;
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
        "unfreezes the last part of the backbone behind a val-F1 gate; optional stage 3 the whole backbone.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = _DEFAULTS
    io = p.add_argument_group("data and output")
    io.add_argument(
        "--data_root",
        required=True,
        help="OCEC parquet file/folder, or image folders {train,val}/{open,closed}/ or {open,closed}/",
    )
    io.add_argument(
        "--output_dir", required=True, help="run folder (checkpoints, metrics.jsonl, events.jsonl)"
    )
    io.add_argument(
        "--val_ratio",
        type=float,
        default=d.val_ratio,
        help="val share for data without a split (seeded, stratified; default %(default)s)",
    )
    io.add_argument(
        "--image_size", type=image_size, default=d.image_size, help="HxW, height first (default 32x64)"
    )
    io.add_argument(
        "--augment",
        choices=[a.value for a in AugmentPolicy],
        default=d.augment.value,
        help="per-batch augmentation policy, in [0,1] pixels before normalisation (default %(default)s)",
    )
    start = p.add_argument_group("start and resume")
    start.add_argument(
        "--pretrain", help="weights to start from (model A): OCEC checkpoint, ours, or a bare state dict"
    )
    start.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue a run from one of its checkpoints (full state; architecture from the file, "
        "run settings from these flags)",
    )
    start.add_argument(
        "--stage",
        type=int,
        choices=[1, 2, 3],
        help="stage to start in (default 1); with --resume: force this stage at the first epoch",
    )
    run = p.add_argument_group("optimisation")
    run.add_argument(
        "--epochs", type=int, default=d.epochs, help="total epochs, all stages together (default %(default)s)"
    )
    run.add_argument("--batch_size", type=int, default=d.batch_size, help="default %(default)s")
    run.add_argument(
        "--lr", type=float, default=d.lr, help="stage-1 (base) learning rate, AdamW (default %(default)s)"
    )
    run.add_argument(
        "--weight_decay",
        type=float,
        default=d.weight_decay,
        help="AdamW weight decay on trainable params (default %(default)s)",
    )
    run.add_argument(
        "--warmup_epochs",
        type=int,
        default=d.warmup_epochs,
        help="linear lr warm-up at the run start only, never at a stage change (default %(default)s)",
    )
    run.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help="data order, augmentation and dropout derive from it (default %(default)s)",
    )
    run.add_argument(
        "--use_amp", action="store_true", help="mixed precision on CUDA (a no-op with a notice on CPU)"
    )
    run.add_argument(
        "--device",
        choices=[c.value for c in DeviceChoice],
        default=d.device.value,
        help="default %(default)s",
    )
    run.add_argument(
        "--check_every_batches",
        type=int,
        default=d.check_every_batches,
        help="poll for stop requests every N batches (default %(default)s)",
    )
    run.add_argument(
        "--keep_epoch_checkpoints",
        type=int,
        default=d.keep_epoch_checkpoints,
        help="keep the newest N epochs/epoch_NNNN.pt (0 = all; default %(default)s)",
    )
    model = p.add_argument_group("model (fresh runs; a resume uses the checkpoint's)")
    model.add_argument(
        "--margin_method",
        choices=[m.value for m in MarginMethod],
        default=d.margin_method.value,
        help="default %(default)s",
    )
    model.add_argument("--base_channels", type=int, default=d.base_channels, help="default %(default)s")
    model.add_argument("--num_blocks", type=int, default=d.num_blocks, help="default %(default)s")
    model.add_argument("--dropout", type=float, default=d.dropout, help="default %(default)s")
    model.add_argument(
        "--arch_variant",
        choices=["baseline"],
        default="baseline",
        help="OCEC's baseline CNN (the only variant)",
    )
    s2 = p.add_argument_group("stages 1 and 2")
    s2.add_argument(
        "--freeze_backbone",
        action="store_true",
        help="progressive fine-tuning: stage 1 trains only the head. Without it: a plain full "
        "fine-tune (everything at --lr, no stages)",
    )
    s2.add_argument(
        "--unfreeze_backbone_epoch",
        type=int,
        help="U: first epoch at which the stage-2 gate is read (none: stage 2 only by --stage/forcing)",
    )
    s2.add_argument(
        "--unfreeze_backbone_ratio",
        type=float,
        default=_S2.unfreeze_ratio,
        help="share of backbone parameters unfrozen in stage 2, counted from the back in whole "
        "blocks (default %(default)s)",
    )
    s2.add_argument(
        "--stage2_gate_f1",
        type=float,
        default=_S2.gate_f1,
        help="enter stage 2 when the previous epoch's val F1 >= this (default %(default)s)",
    )
    s2.add_argument("--stage2_lr", type=float, help="explicit stage-2 lr (default: lr x --stage2_lr_factor)")
    s2.add_argument("--stage2_lr_factor", type=float, default=_S2.lr_factor, help="default %(default)s")
    s2.add_argument(
        "--on_gate_fail",
        choices=_POLICIES,
        default=_S2.on_gate_fail.value,
        help="when the gate fails: keep-trying (each epoch until the deadline, then stop), pause "
        "(checkpoint, await a decision), proceed, stop (default %(default)s)",
    )
    s2.add_argument(
        "--gate_deadline_epoch", type=int, help="keep-trying stops after this epoch (default: the last epoch)"
    )
    s3 = p.add_argument_group("stage 3 (optional; any --stage3_* flag enables it)")
    s3.add_argument(
        "--stage3",
        action="store_true",
        help="enable stage 3: unfreeze the whole backbone behind its own gate",
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


def _stage3(a: argparse.Namespace) -> StageGateConfig | None:
    keys = ("epoch", "gate_f1", "lr", "lr_factor", "unfreeze_ratio", "on_gate_fail", "gate_deadline_epoch")
    given = {k: getattr(a, f"stage3_{k}") for k in keys if getattr(a, f"stage3_{k}") is not None}
    if not a.stage3 and not given:
        return None
    gate = default_stage3()
    for key, value in given.items():
        setattr(gate, key, GateFailPolicy(value) if key == "on_gate_fail" else value)
    return gate


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    stage2 = StageGateConfig(
        gate_f1=a.stage2_gate_f1,
        unfreeze_ratio=a.unfreeze_backbone_ratio,
        lr_factor=a.stage2_lr_factor,
        lr=a.stage2_lr,
        on_gate_fail=GateFailPolicy(a.on_gate_fail),
        gate_deadline_epoch=a.gate_deadline_epoch,
    )
    return TrainConfig(
        data_root=a.data_root,
        output_dir=a.output_dir,
        pretrain=a.pretrain,
        resume=a.resume,
        resume_stage=a.stage if a.resume else None,
        stage=a.stage if a.stage and not a.resume else 1,
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        weight_decay=a.weight_decay,
        warmup_epochs=a.warmup_epochs,
        freeze_backbone=a.freeze_backbone,
        unfreeze_backbone_epoch=a.unfreeze_backbone_epoch,
        stage2=stage2,
        stage3=_stage3(a),
        margin_method=MarginMethod(a.margin_method),
        use_amp=a.use_amp,
        seed=a.seed,
        device=DeviceChoice(a.device),
        image_size=a.image_size,
        base_channels=a.base_channels,
        num_blocks=a.num_blocks,
        dropout=a.dropout,
        val_ratio=a.val_ratio,
        augment=AugmentPolicy(a.augment),
        check_every_batches=a.check_every_batches,
        keep_epoch_checkpoints=a.keep_epoch_checkpoints,
    )


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ocec_engine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,make-data,export}")
    _train_parser(sub)
    _make_data_parser(sub)
    _export_parser(sub)
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
