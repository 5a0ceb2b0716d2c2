"""A training run's own evaluation: model A before the first epoch, each stage's best, best.pt after.

Reports go to ``<output_dir>/evaluation/<tag>/`` (report.json, worst.png, worst/, scores.npz):
``before_B`` (the start weights, model A, on the run's data B), ``stage{N}_B`` (the best checkpoint
of stage N, taken when stage N ends), ``after_B`` (best.pt at the end); with a retention data root
(the source domain A) also ``before_A`` and ``after_A``. B is scored on its test split when it has
one (never seen by training, the gate or the choice of best), else on val; A likewise.

The decision threshold is chosen once, F1-optimal for best.pt on B's val split, stored in best.pt
(and so in its ONNX export) and applied to every row of the summary table. A report on a test split
never picks its own threshold there: before/stage reports use their model's F1-optimal val
threshold. An evaluation that fails is logged and noted; it never fails the training run.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ocec_engine.atomic import atomic_path
from ocec_engine.checkpoint import THRESHOLD_KEY
from ocec_engine.config import TrainConfig
from ocec_engine.errors import DataError
from ocec_engine.evaluation.dataset import EvalSet, EvalSplit, load_eval_set
from ocec_engine.evaluation.metrics import at_threshold, curve
from ocec_engine.evaluation.models import LoadedModel, load_model
from ocec_engine.evaluation.report import Options, choose_threshold
from ocec_engine.evaluation.run import REPORT_FILE, SCORES_FILE, write_evaluation
from ocec_engine.evaluation.scoring import score_all
from ocec_engine.evaluation.thresholds import ThresholdRule

log = logging.getLogger("ocec_engine")
EVALUATION_DIR = "evaluation"
SUMMARY_FILE = "summary.json"
DOMAIN_B, DOMAIN_A = "B", "A"
RULE = ThresholdRule.F1


def tag_model(tag: str) -> str:
    """The table's model column: A (start weights), stage1/stage2/stage3 (a stage's best), best."""
    if tag.startswith("before_"):
        return "A"
    if tag.startswith("after_"):
        return "best"
    return tag.split("_")[0]


class RunEvaluator:
    """Evaluates the run's checkpoints at its start, its stage changes and its end (see module doc)."""

    def __init__(self, config: TrainConfig, image_size: tuple[int, int]) -> None:
        self.config = config
        self.image_size = image_size
        self.folder = Path(config.output_dir) / EVALUATION_DIR
        self.roots = {DOMAIN_B: Path(config.data_root)}
        if config.retention_data_root:
            self.roots[DOMAIN_A] = Path(config.retention_data_root)
        self.sets: dict[tuple[str, EvalSplit], EvalSet] = {}
        self.split_of: dict[str, EvalSplit] = {}  # the split each domain is scored on
        self.notes: list[str] = []

    # ------------------------------------------------------------ data
    def _set(self, domain: str, split: EvalSplit) -> EvalSet:
        key = (domain, split)
        if key not in self.sets:
            cfg = self.config
            test_fraction = cfg.test_fraction if domain == DOMAIN_B else 0.0
            self.sets[key] = load_eval_set(
                self.roots[domain], split, self.image_size,
                val_ratio=cfg.val_ratio, seed=cfg.seed, test_fraction=test_fraction,
            )  # fmt: skip
        return self.sets[key]

    def eval_set(self, domain: str) -> EvalSet:
        """The domain's test split when it has one, else its val split (the answer is kept)."""
        if self.split_of.get(domain) is not EvalSplit.VAL:
            try:
                data = self._set(domain, EvalSplit.TEST)
                self.split_of[domain] = EvalSplit.TEST
                return data
            except DataError:
                self.split_of[domain] = EvalSplit.VAL
        return self._set(domain, EvalSplit.VAL)

    # ------------------------------------------------------- the points
    def before(self, start_weights: Path) -> None:
        for domain in self.roots:
            self._evaluate(f"before_{domain}", start_weights, domain)

    def stage_ended(self, stage: int, best: Path | None) -> None:
        """Stage ``stage`` ends: ``best`` is its best checkpoint (None when it set no new best)."""
        if best is not None and best.is_file():
            self._evaluate(f"stage{stage}_B", best, DOMAIN_B)

    def finish(self, best: Path, best_stage: int) -> dict[str, Any] | None:
        """best.pt on every domain, the threshold stored in it, and the summary (None on failure)."""
        try:
            threshold = self._choose_threshold(best)
            store_threshold(best, threshold)
        except Exception as exc:  # the run's result stands without its evaluation
            self._failed("threshold", exc)
            return None
        if not (self.folder / f"stage{best_stage}_B" / REPORT_FILE).is_file():  # else taken when it ended
            self._evaluate(f"stage{best_stage}_B", best, DOMAIN_B, threshold["value"])
        for domain in self.roots:
            self._evaluate(f"after_{domain}", best, domain, threshold["value"])
        try:
            return self.summary(threshold)
        except Exception as exc:
            self._failed("summary", exc)
            return None

    # ---------------------------------------------------------- helpers
    def _val_threshold(self, model: LoadedModel, domain: str) -> float:
        """The F1-optimal threshold of ``model`` on the domain's val split (never on test)."""
        val = self._set(domain, EvalSplit.VAL)
        return choose_threshold(curve(score_all(model.score, val.x), val.labels), RULE, None).value

    def _choose_threshold(self, best: Path) -> dict[str, Any]:
        value = self._val_threshold(load_model(best), DOMAIN_B)
        return {
            "value": value, "rule": RULE.value, "target": None, "split": EvalSplit.VAL.value,
            "data_root": str(self.roots[DOMAIN_B]),
        }  # fmt: skip

    def _evaluate(self, tag: str, model_path: Path, domain: str, threshold: float | None = None) -> None:
        """One report. Without ``threshold``: F1-optimal on the evaluated split when that is val, else
        chosen on val and applied to test as a fixed threshold (the test split is never peeked at)."""
        out = self.folder / tag
        try:
            data = self.eval_set(domain)
            model = load_model(model_path)
            if threshold is None and data.split is EvalSplit.TEST:
                threshold = self._val_threshold(model, domain)
            rule, target = (RULE, None) if threshold is None else (ThresholdRule.FIXED, threshold)
            shutil.rmtree(out, ignore_errors=True)  # a re-run (resume) replaces the whole folder
            write_evaluation(model, data, out, Options(rule, target, seed=self.config.seed))
        except Exception as exc:
            self._failed(tag, exc)

    def _failed(self, what: str, exc: Exception) -> None:
        message = f"evaluation {what} failed: {type(exc).__name__}: {exc}"
        log.error("%s", message)
        self.notes.append(message)

    def summary(self, threshold: dict[str, Any]) -> dict[str, Any]:
        """The job result's table from the reports on disk (all attempts' ones), written to summary.json."""
        rows, reports = [], {}
        for tag in ordered_tags(self.folder):
            report = json.loads((self.folder / tag / REPORT_FILE).read_text())
            with np.load(self.folder / tag / SCORES_FILE) as saved:
                at = at_threshold(saved["scores"], saved["labels"], threshold["value"])
            half = report["at_0_5"]
            rows.append({
                "tag": tag, "model": tag_model(tag), "domain": tag.rsplit("_", 1)[1],
                "split": report["data"]["split"], "f1": half["f1"], "f1_at_threshold": at["f1"],
                "roc_auc": report["roc_auc"], "pr_auc": report["pr_auc"], "accuracy": half["accuracy"],
            })  # fmt: skip
            reports[tag] = f"{EVALUATION_DIR}/{tag}/{REPORT_FILE}"
        by_tag = {row["tag"]: row for row in rows}
        before, after = by_tag.get("before_A"), by_tag.get("after_A")
        split_b = by_tag.get("after_B", {}).get("split", EvalSplit.VAL.value)
        summary = {
            "split": split_b,
            "threshold": threshold["value"],
            "rule": threshold["rule"],
            "threshold_split": threshold["split"],
            "table": rows,
            "forgetting": before["f1"] - after["f1"] if before and after else None,
            "reports": reports,
            "notes": list(self.notes),
        }
        with atomic_path(self.folder / SUMMARY_FILE) as tmp:
            tmp.write_text(json.dumps(summary, indent=1))
        return summary


_ORDER = ("before_B", "stage1_B", "stage2_B", "stage3_B", "after_B", "before_A", "after_A")


def ordered_tags(folder: Path) -> list[str]:
    present = {
        p.name for p in folder.iterdir() if (p / REPORT_FILE).is_file() and (p / SCORES_FILE).is_file()
    }
    return [t for t in _ORDER if t in present] + sorted(present - set(_ORDER))


def store_threshold(checkpoint_path: Path, threshold: dict[str, Any]) -> None:
    """Add the chosen threshold to a checkpoint file (atomically; export_checkpoint carries it on)."""
    from ocec_engine.checkpoint import serialize, write_atomic
    from ocec_engine.weights import read_checkpoint

    data = read_checkpoint(checkpoint_path)
    data[THRESHOLD_KEY] = dict(threshold)
    write_atomic(checkpoint_path, serialize(data))
