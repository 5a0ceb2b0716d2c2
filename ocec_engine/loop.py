"""The progressive training loop: ``train(config, hooks) -> TrainResult`` (docs/engine.md).

Per epoch ``e``:

1. boundary (skipped when resuming mid-epoch): poll commands; apply a resume stage and queued
   FORCE_STAGE commands (once each); on PAUSE / CANCEL / should_stop write ``interrupt.pt`` and end;
   otherwise read the gate into the next stage and act on it (enter / wait / proceed / pause / stop);
2. train: stage train modes (frozen BN in eval), the stage lr for the epoch, batches in the order of
   (seed, e), each re-seeded from (seed, e, b); commands polled every ``check_every_batches``;
3. validate (eval mode, margin-free, threshold 0.5), step the plateau schedule, update best;
4. write ``epochs/epoch_NNNN.pt`` (every ``checkpoint_every`` epochs and the last), ``last.pt`` and
   (if best) ``best.pt``, report each with ``on_checkpoint``, then ``on_epoch_end``.

At the end (epoch budget reached, or a gate stopped the run) the best checkpoint is exported to
ONNX next to it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ocec_engine import commands, rng
from ocec_engine.best import baseline_note, carry_best
from ocec_engine.bootstrap import Prepared, prepare
from ocec_engine.checkpoint import Layout, kind_path, prune_epochs, serialize, write_atomic
from ocec_engine.config import AugmentPolicy, TrainConfig
from ocec_engine.errors import EngineError
from ocec_engine.evaluate import evaluate
from ocec_engine.evaluation.training import RunEvaluator
from ocec_engine.fused import fused_prefix
from ocec_engine.gates import GateAction, read_gate
from ocec_engine.hooks import (
    CheckpointInfo,
    CheckpointKind,
    Command,
    CommandResult,
    EpochMetrics,
    GateCheck,
    NullHooks,
    Outcome,
    RunInfo,
    StageEvent,
    StageTrigger,
    TrainingHooks,
    TrainResult,
)
from ocec_engine.optim import build_optimizer, manifest, set_lrs
from ocec_engine.plain import plain
from ocec_engine.resume_settings import describe_changes
from ocec_engine.runstate import Partial
from ocec_engine.stages import PlanKind, apply_stage, gate_deadline, is_optional, set_train_mode
from ocec_engine.steps import StepResult, batch_slices, embed_all, prepare_batch, train_step

log = logging.getLogger("ocec_engine")
MARGIN_WARMUP_EPOCHS = 10  # margin ramps m x min(1, epoch / 10) over the run's first epochs (as OCEC)
_DEVICE_DATA_LIMIT = 4 << 30  # keep the uint8 train set on the GPU when it is smaller than this
_EMBED_CACHE_LIMIT = 1 << 30  # bytes: cache stage-1 embeddings (no augmentation) up to this size


def train(config: TrainConfig, hooks: TrainingHooks | None = None) -> TrainResult:
    """Run (or resume) a training run; see the module docstring and docs/engine.md."""
    return Trainer(prepare(config), hooks or NullHooks()).run()


@dataclass(frozen=True)
class Ending:
    outcome: Outcome
    reason: str
    gate: GateCheck | None = None


class Trainer:
    def __init__(self, prepared: Prepared, hooks: TrainingHooks) -> None:
        self.p = prepared
        self.s = prepared.state
        self.hooks = hooks
        self.config = self.s.config
        self.runtime = prepared.runtime
        self.layout = Layout(Path(self.config.output_dir))
        self.last_gate: GateCheck | None = None  # the latest failed read of the next stage's gate
        self.resume_stage = self.config.resume_stage if prepared.resumed_from else None
        self.epoch_lrs: dict[str, float] = {}
        self.embed_cache: tuple[int, Tensor] | None = None  # (stage, embeddings of train_x)
        self.stepped = False  # an optimizer step was taken in this run (the weights are ours now)
        self.fused: torch.nn.Module | None = None  # the frozen prefix, BN folded (rebuilt every epoch)
        data = prepared.data
        on_gpu = self.runtime.device.type == "cuda" and data.train_x.numel() < _DEVICE_DATA_LIMIT
        self.train_x = data.train_x.to(self.runtime.device) if on_gpu else data.train_x
        self.train_y = data.train_y.to(self.train_x.device)
        self.augment = None if self.config.augment == AugmentPolicy.NONE else prepared.augmenter
        self.evaluator = RunEvaluator(self.config, data.image_size) if self.config.evaluate else None

    # ----------------------------------------------------------------- run
    def run(self) -> TrainResult:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        fresh = self.p.resumed_from is None
        if fresh:
            self.s.initial_val = self._validate().scores()
        for note in self.p.notes:
            log.warning("resume: %s", note)
        self.hooks.on_train_start(self._run_info())
        if fresh:
            self._start_event()
            if self.evaluator is not None:  # model A on B (and A), before the first epoch
                self.evaluator.before(self.layout.stage_entry(self.s.stage.stage))
        else:
            if self.p.changes or self.p.lr_change is not None:
                self._resume_change_event()
            self._carry_best()
        epoch = self.s.partial.epoch if self.s.partial else self.s.completed + 1
        while epoch <= self.config.epochs:
            if self.s.partial is None:
                ending = self._boundary(epoch)
                if ending is not None:
                    return self._finish(ending)
            ending = self._train_epoch(epoch)
            if ending is not None:
                return self._finish(ending)
            self._end_epoch(epoch)
            epoch += 1
        return self._finish(self._budget_end())

    # ------------------------------------------------------------ boundary
    def _boundary(self, epoch: int) -> Ending | None:
        stop = commands.poll(self.hooks, self.s.stage, None)
        self._apply_forced(epoch)
        if stop is not None:
            return self._interrupt(epoch, stop)
        decision = read_gate(self.s.plan.gates, self.s.stage, epoch, self.config.epochs, self.s.last_f1)
        if decision is None:
            return None
        check = decision.check
        self.hooks.on_gate_check(check)
        if decision.action in (GateAction.ENTER, GateAction.PROCEED):
            trigger = StageTrigger.GATE if decision.action is GateAction.ENTER else StageTrigger.POLICY
            evidence = {"val_f1": check.f1, "gate_f1": check.threshold, "at_epoch": epoch - 1}
            self._transition(check.stage, epoch, trigger, check.reason, evidence)
            return None
        self.last_gate = check
        if decision.action in (GateAction.WAIT, GateAction.SKIP):
            return None
        if decision.action is GateAction.PAUSE:
            self.s.stage.paused_gates.append(check.stage)
            self.s.stage.paused_at[check.stage] = epoch
            self._write([CheckpointKind.LAST])  # record the pause so a resume keeps trying instead
            return Ending(Outcome.AWAITING_DECISION, check.reason, check)
        return Ending(Outcome.STOPPED, check.reason, check)

    def _apply_forced(self, epoch: int) -> None:
        if self.resume_stage is not None:
            target, self.resume_stage = self.resume_stage, None
            if target != self.s.stage.stage:
                self.s.plan.spec(target)  # raises for a stage the config does not define
                reason = f"resume_stage {target} requested with the resume"
                self._transition(target, epoch, StageTrigger.RESUME, reason, {"val_f1": self.s.last_f1})
        for command in commands.take_pending(self.s.stage):
            evidence = {"val_f1": self.s.last_f1, "stage": self.s.stage.stage}
            target, refusal = self._check_force(command)
            if refusal is None:
                why = f"forced by {command.actor}" + (f": {command.reason}" if command.reason else "")
                self._transition(target, epoch, StageTrigger.FORCED, why, evidence, command)
                done = f"stage {target} from epoch {epoch}"
                self.hooks.on_command_result(
                    CommandResult(command.command_id, command.kind, True, done, epoch, evidence)
                )
            else:
                self.hooks.on_command_result(
                    CommandResult(command.command_id, command.kind, False, refusal, epoch, evidence)
                )

    def _check_force(self, command: Command) -> tuple[int, str | None]:
        try:
            target = int(command.params["stage"])
        except (KeyError, TypeError, ValueError):
            return 0, f"params.stage must be an integer, got {command.params.get('stage')!r}"
        current = self.s.stage.stage
        if self.s.plan.kind is PlanKind.FULL:
            return target, "a full fine-tune (freeze_backbone off) has no stages"
        if target <= current:
            return target, f"already in stage {current}; stage {target} is not ahead"
        if target > self.s.plan.max_stage:
            return target, f"stage {target} is not configured (last stage: {self.s.plan.max_stage})"
        return target, None

    def _transition(
        self,
        to: int,
        epoch: int,
        trigger: StageTrigger,
        reason: str,
        evidence: dict[str, Any],
        command: Command | None = None,
    ) -> None:
        s = self.s
        from_stage = s.stage.stage
        if self.evaluator is not None:  # best.pt is still the best of the stage that ends
            self.evaluator.stage_ended(
                from_stage, self.layout.best if self._best_stage() == from_stage else None
            )
        spec = s.plan.spec(to)
        unfrozen = s.plan.newly_unfrozen(from_stage, to)
        apply_stage(s.model, s.plan, to)
        groups = manifest(s.model, s.plan.head, spec.trainable)
        s.optimizer = build_optimizer(
            s.model, groups, spec.lr, self.config.weight_decay, previous=s.optimizer
        )
        s.schedule.rebase(spec.lr)
        lrs = {name: s.schedule.lr_for(epoch) for name in groups}
        details = {
            "trainable_units": list(spec.trainable_units),
            "ratio_requested": spec.ratio_requested,
            "ratio_achieved": round(spec.ratio_achieved, 6),
            "lr_rule": spec.lr_rule,
        }
        event = StageEvent(
            from_stage=from_stage,
            to_stage=to,
            epoch=epoch,
            trigger=trigger,
            reason=reason,
            evidence={**evidence, **details},
            lrs=lrs,
            unfrozen=unfrozen,
            trainable_params=self._trainable_params(),
            command_id=command.command_id if command else None,
            actor=command.actor if command else None,
        )
        s.stage.stage, s.stage.entered_epoch = to, epoch
        s.stage.trigger, s.stage.reason = trigger, reason
        s.stage.transitions.append(plain(event))
        self.last_gate = None
        log.info(
            "stage %s -> %s at epoch %d (%s): unfrozen %s", from_stage, to, epoch, trigger.value, unfrozen
        )
        self.hooks.on_stage_change(event)
        self._write([CheckpointKind.STAGE_ENTRY])

    def _start_event(self) -> None:
        s = self.s
        spec = s.plan.spec(s.stage.stage)
        event = StageEvent(
            from_stage=None,
            to_stage=s.stage.stage,
            epoch=1,
            trigger=StageTrigger.START,
            reason=s.stage.reason,
            evidence={
                "initial_val_f1": (s.initial_val or {}).get("f1"),
                "plan": s.plan.describe(),
                "trainable_units": list(spec.trainable_units),
                "ratio_achieved": round(spec.ratio_achieved, 6),
                "lr_rule": spec.lr_rule,
            },
            lrs={name: s.schedule.lr_for(1) for name in s.groups()},
            unfrozen=list(spec.trainable),
            trainable_params=self._trainable_params(),
        )
        s.stage.transitions.append(plain(event))
        self.hooks.on_stage_change(event)
        self._write([CheckpointKind.STAGE_ENTRY])

    def _carry_best(self) -> None:
        try:
            info = carry_best(self.s, self.layout, str(self.p.resumed_from))
        except LookupError as exc:
            log.warning("resume: %s; the best restarts in this folder", exc)
            self.s.best_f1, self.s.best_epoch, self.s.best_loss = None, 0, None
            return
        if info is not None:
            self.hooks.on_checkpoint(info)

    def _resume_change_event(self) -> None:
        """The settings this resume changed (and the stage lr that follows), as a within-stage event."""
        s, changes = self.s, self.p.changes
        epoch = s.partial.epoch if s.partial else s.completed + 1
        parts = [f"settings changed on resume: {describe_changes(changes)}"] if changes else []
        evidence: dict[str, Any] = {"changes": dict(changes)}
        if self.p.lr_change is not None:
            old, new = self.p.lr_change
            parts.append(f"stage {s.stage.stage} lr changed on resume: {old:g} -> {new:g}")
            evidence.update(old_lr=old, new_lr=new)
        event = StageEvent(
            from_stage=s.stage.stage,
            to_stage=s.stage.stage,
            epoch=epoch,
            trigger=StageTrigger.RESUME,
            reason="; ".join(parts),
            evidence=evidence,
            lrs={name: s.schedule.lr_for(epoch) for name in s.groups()},
            unfrozen=[],
            trainable_params=self._trainable_params(),
        )
        s.stage.transitions.append(plain(event))
        self.hooks.on_stage_change(event)

    # --------------------------------------------------------------- epoch
    def _train_epoch(self, epoch: int) -> Ending | None:
        s, cfg = self.s, self.config
        part = s.partial or Partial(epoch)
        s.partial = part
        stage = s.stage.stage
        set_train_mode(s.model, s.plan, stage)
        self.epoch_lrs = set_lrs(s.optimizer, s.schedule.lr_for(epoch))
        frozen = s.plan.frozen_prefix(stage)
        started, base_seconds = time.perf_counter(), part.seconds
        cache = self._embeddings(stage, frozen)
        self.fused = None if cache is not None else fused_prefix(s.model, frozen)
        order = rng.epoch_order(cfg.seed, epoch, len(self.train_y)).to(self.train_x.device)
        slices = batch_slices(len(self.train_y), cfg.batch_size)
        margin_scale = min(1.0, epoch / MARGIN_WARMUP_EPOCHS)
        for b in range(part.batch, len(slices)):
            idx = order[slices[b][0] : slices[b][1]]
            res, y = self._batch(epoch, b, idx, cache, frozen, margin_scale)
            if res.finite:
                part.loss.update(res.loss, len(idx))
            part.skipped_steps += 0 if res.stepped else 1
            part.counts.update(res.predicted_open.cpu(), y.cpu())
            part.batch = b + 1
            part.seconds = base_seconds + time.perf_counter() - started
            self.hooks.on_batch_end(epoch, part.batch, len(slices), res.loss)
            if part.batch % cfg.check_every_batches == 0 and part.batch < len(slices):
                stop = commands.poll(self.hooks, s.stage, None)
                if stop is not None:
                    return self._interrupt(epoch, stop)
        return None

    def _batch(
        self, epoch: int, b: int, idx: Tensor, cache: Tensor | None, frozen: int, margin_scale: float
    ) -> tuple[StepResult, Tensor]:
        """Batch ``b`` of ``epoch``: re-seed, build inputs (or take cached embeddings), one step."""
        s, cfg = self.s, self.config
        rng.seed_batch(cfg.seed, epoch, b)
        y = self.train_y[idx].to(self.runtime.device, non_blocking=True)
        if cache is not None:
            emb = cache[idx]
            res = train_step(s.model, s.optimizer, s.scaler, self.runtime, emb, y, frozen, margin_scale, emb)
        else:
            gen = rng.batch_generator(cfg.seed, epoch, b, self.runtime.device)
            x = prepare_batch(self.train_x[idx], self.runtime, self.augment, gen)
            res = train_step(
                s.model, s.optimizer, s.scaler, self.runtime, x, y, frozen, margin_scale, frozen=self.fused
            )
        if not res.finite and s.scaler is None:
            raise self._diverged(res.loss, epoch, b + 1)
        self.stepped = self.stepped or res.stepped
        return res, y

    def _diverged(self, loss: float, epoch: int, batch: int) -> EngineError:
        """A non-finite fp32 loss, explained: weights loaded with NaN/inf, or training that diverged."""
        where = f"non-finite training loss ({loss}) at epoch {epoch}, batch {batch}"
        bad = nonfinite_tensors(self.s.model)
        if bad and not self.stepped:
            source = self.p.resumed_from or self.config.pretrain or "the initial weights"
            return EngineError(
                f"{where}: the weights loaded from {source} hold NaN/inf in {_names(bad)}; "
                "use another checkpoint"
            )
        lrs = ", ".join(f"{name} {lr:g}" for name, lr in self.epoch_lrs.items())
        now = f" (non-finite weights now: {_names(bad)})" if bad else ""
        return EngineError(
            f"{where}: training diverged{now}; lower the lr (now {lrs}) or check the data, "
            "then resume from an earlier checkpoint"
        )

    def _embeddings(self, stage: int, frozen: int) -> Tensor | None:
        """Stage-1 embeddings of the train set, computed once per stage when nothing varies them."""
        s = self.s
        fixed = frozen == len(s.plan.units) and s.plan.kind is PlanKind.PROGRESSIVE and self.augment is None
        size = len(self.train_y) * s.model.embedding_dim * 4  # type: ignore[operator]
        if not fixed or size > _EMBED_CACHE_LIMIT:
            self.embed_cache = None
            return None
        if self.embed_cache is None or self.embed_cache[0] != stage:
            set_train_mode(s.model, s.plan, stage)  # the frozen backbone is in eval mode here
            embeddings = embed_all(s.model, self.train_x, self.config.batch_size, self.runtime, frozen)
            self.embed_cache = (stage, embeddings)
        return self.embed_cache[1]

    def _validate(self) -> Any:
        data = self.p.data
        return evaluate(self.s.model, data.val_x, data.val_y, self.config.batch_size, self.runtime)

    def _end_epoch(self, epoch: int) -> None:
        s = self.s
        part = s.partial if s.partial is not None else Partial(epoch)
        started = time.perf_counter()
        ev = self._validate()
        val_seconds = time.perf_counter() - started
        s.schedule.step(epoch, ev.loss)
        f1 = ev.counts.f1()
        is_best = s.improves(f1, ev.loss)
        if is_best:
            s.best_f1, s.best_epoch, s.best_loss = f1, epoch, ev.loss
        baseline = s.initial_val or {}
        metrics = EpochMetrics(
            epoch=epoch,
            stage=s.stage.stage,
            train_loss=part.loss.mean,
            val_loss=ev.loss,
            val_f1=f1,
            val_precision=ev.counts.precision(),
            val_recall=ev.counts.recall(),
            val_accuracy=ev.counts.accuracy(),
            fisher_ratio=ev.fisher,
            lrs=dict(self.epoch_lrs),
            trainable_params=self._trainable_params(),
            epoch_seconds=part.seconds + val_seconds,
            samples_per_sec=part.loss.count / part.seconds if part.seconds > 0 else 0.0,
            train_f1=part.counts.f1(),
            is_best=is_best,
            best_f1=s.best_f1 or 0.0,
            best_epoch=s.best_epoch,
            extra={
                "train_accuracy": part.counts.accuracy(),
                "val_counts": ev.counts.to_dict(),
                "margin_scale": min(1.0, epoch / MARGIN_WARMUP_EPOCHS),
                "skipped_steps": part.skipped_steps,
                "train_seconds": part.seconds,
                "train_samples": part.loss.count,  # a race's budget counts sample-epochs (docs/race.md)
                "val_seconds": val_seconds,
                "frozen_units": [u.name for u in s.plan.units[: s.plan.frozen_prefix(s.stage.stage)]],
                "plan": s.plan.kind.value,
                "baseline_f1": baseline.get("f1"),  # the starting weights (model A) on val
                "baseline_val_loss": baseline.get("loss"),
                "beats_baseline": s.beats_baseline(),  # the best epoch so far vs model A
            },
        )
        s.history.append(plain(metrics))
        s.completed, s.partial = epoch, None
        periodic = epoch % self.config.checkpoint_every == 0 or epoch == self.config.epochs
        kinds = [CheckpointKind.EPOCH] if periodic else []
        kinds += [CheckpointKind.LAST] + ([CheckpointKind.BEST] if is_best else [])
        self._write(kinds)
        self.layout.interrupt.unlink(missing_ok=True)  # superseded by this epoch's state
        prune_epochs(self.layout, self.config.keep_epoch_checkpoints)
        self.hooks.on_epoch_end(metrics)

    # ----------------------------------------------------------- endings
    def _interrupt(self, epoch: int, stop: commands.StopRequest) -> Ending:
        s = self.s
        if s.partial is None:
            s.partial = Partial(epoch)
        batch = s.partial.batch
        evidence = {"val_f1": s.last_f1, "epoch": epoch, "batch": batch}
        if stop.outcome is not Outcome.PREEMPTED:  # only a preemption comes back on its own
            self._refuse_pending(
                f"the run {stop.outcome.value} at epoch {epoch}, batch {batch}, before "
                "the next epoch boundary; force it again after resuming",
                epoch,
                evidence,
            )
        self._write([CheckpointKind.INTERRUPT])
        for command in stop.commands:
            done = f"{command.kind.value} at epoch {epoch}, batch {batch}: interrupt checkpoint written"
            self.hooks.on_command_result(
                CommandResult(command.command_id, command.kind, True, done, epoch, evidence)
            )
        return Ending(stop.outcome, f"{stop.reason} (epoch {epoch}, batch {batch})")

    def _refuse_pending(self, why: str, epoch: int, evidence: dict[str, Any]) -> None:
        """Answer the queued FORCE_STAGE commands with a refusal (the run will not reach a boundary)."""
        for command in commands.take_pending(self.s.stage):
            self.hooks.on_command_result(
                CommandResult(command.command_id, command.kind, False, why, epoch, dict(evidence))
            )

    def _budget_end(self) -> Ending:
        done = f"epoch budget reached ({self.config.epochs} epochs)"
        gate = self.last_gate
        if gate is None:
            return Ending(Outcome.COMPLETED, done)
        spec = self.s.plan.spec(gate.stage)
        deadline = gate_deadline(spec.gate, self.config.epochs) if spec.gate else self.config.epochs
        shut = f"gate never opened by the deadline (epoch {deadline}); last read: {gate.reason}"
        if is_optional(gate.stage):  # the run did all it had to; the optional stage did not happen
            return Ending(Outcome.COMPLETED, f"{done}; optional stage {gate.stage} not entered: its {shut}")
        return Ending(Outcome.STOPPED, f"stage {gate.stage} {shut}", gate)

    def _finish(self, ending: Ending) -> TrainResult:
        s = self.s
        final = ending.outcome in (Outcome.COMPLETED, Outcome.STOPPED)
        if final:
            why = f"the run ended ({ending.outcome.value}) before the next epoch boundary"
            self._refuse_pending(why, s.completed, {"val_f1": s.last_f1})
        best = self.layout.best if self.layout.best.is_file() else None
        # before the export: the evaluation writes the chosen threshold into best.pt
        evaluation = self._final_evaluation(best) if final and best is not None else None
        onnx = self._export(best) if final and best is not None else None
        if ending.outcome in (Outcome.PAUSED, Outcome.CANCELLED, Outcome.PREEMPTED):
            last = self.layout.interrupt
        else:
            last = self.layout.last
        result = TrainResult(
            outcome=ending.outcome,
            reason=ending.reason + (baseline_note(s) if final else ""),
            epoch=s.completed,
            stage=s.stage.stage,
            best_f1=s.best_f1 or 0.0,
            best_epoch=s.best_epoch,
            best_checkpoint=str(best) if best else None,
            last_checkpoint=str(last) if last.is_file() else None,
            onnx_path=onnx,
            gate=ending.gate,
            baseline_f1=(s.initial_val or {}).get("f1"),
            beats_baseline=s.beats_baseline(),
            evaluation=evaluation,
        )
        self.hooks.on_train_end(result)
        return result

    def _final_evaluation(self, best: Path) -> dict[str, Any] | None:
        """best.pt evaluated (the threshold stored in it), then reported again as the file now is."""
        if self.evaluator is None:
            return None
        s = self.s
        best_stage = self._best_stage() or s.stage.stage
        evaluation = self.evaluator.finish(best, best_stage)
        if best.is_file():
            size = best.stat().st_size
            self.hooks.on_checkpoint(
                CheckpointInfo(str(best), CheckpointKind.BEST, s.best_epoch, best_stage, s.best_f1, size, 0)
            )
        return evaluation

    def _export(self, best: Path) -> str | None:
        from ocec_engine.export import export_checkpoint

        target = self.layout.onnx_for(best)
        try:
            export_checkpoint(best, target)
        except (EngineError, RuntimeError, OSError) as exc:
            log.error("ONNX export of %s failed: %s", best, exc)
            return None
        return str(target)

    # ------------------------------------------------------------ helpers
    def _write(self, kinds: list[CheckpointKind]) -> None:
        s = self.s
        data = serialize(s.to_checkpoint())
        for kind in kinds:
            path = kind_path(self.layout, kind, s.completed, s.stage.stage)
            size = write_atomic(path, data)
            batch = s.partial.batch if kind is CheckpointKind.INTERRUPT and s.partial else 0
            info = CheckpointInfo(str(path), kind, s.completed, s.stage.stage, s.last_f1, size, batch)
            self.hooks.on_checkpoint(info)

    def _best_stage(self) -> int | None:
        """The stage the best checkpoint was written in (from the history row of the best epoch)."""
        row = next((r for r in self.s.history if int(r["epoch"]) == self.s.best_epoch), None)
        return int(row["stage"]) if row is not None else None

    def _trainable_params(self) -> int:
        return sum(p.numel() for p in self.s.model.parameters() if p.requires_grad)

    def _run_info(self) -> RunInfo:
        s = self.s
        resumed = self.p.resumed_from is not None
        return RunInfo(
            stage=s.stage.stage,
            start_epoch=s.partial.epoch if s.partial else s.completed + 1,
            epochs=self.config.epochs,
            resumed_from=self.p.resumed_from,
            restored_epoch=s.completed if resumed else 0,
            restored_batch=s.partial.batch if s.partial else 0,
            trainable_params=self._trainable_params(),
            total_params=sum(p.numel() for p in s.model.parameters()),
            device=str(self.runtime.device),
            amp=self.runtime.amp,
            pretrain_report=self.p.pretrain_report,
            history=[dict(r) for r in s.history],
            initial_metrics=s.initial_val,
            notes=list(self.p.notes),
        )


def nonfinite_tensors(model: torch.nn.Module) -> list[str]:
    """Names of the floating-point parameters and buffers holding NaN or inf."""
    named = [*model.named_parameters(), *model.named_buffers()]
    return [name for name, t in named if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def _names(names: list[str], limit: int = 5) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
