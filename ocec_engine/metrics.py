"""Classification and class-separation metrics (definitions: docs/metrics.md).

Binary metrics treat "open" (label 1) as the positive class and predict open when P(open) >= 0.5,
i.e. when the open logit is >= the closed logit. The threshold is a constant of the run, never a
mutable global. Undefined ratios (0/0) are 0.0, as scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

FISHER_RIDGE = 1e-3  # relative ridge: lambda = FISHER_RIDGE * trace(S_W) / D


@dataclass
class BinaryCounts:
    """Confusion counts for the positive class "open" (label 1)."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def update(self, predicted_open: Tensor, labels: Tensor) -> None:
        pred = predicted_open.bool()
        true = labels.bool()
        self.tp += int((pred & true).sum())
        self.fp += int((pred & ~true).sum())
        self.fn += int((~pred & true).sum())
        self.tn += int((~pred & ~true).sum())

    def add(self, other: BinaryCounts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.total)

    def scores(self) -> dict[str, float]:
        return {
            "f1": self.f1(),
            "precision": self.precision(),
            "recall": self.recall(),
            "accuracy": self.accuracy(),
        }

    def to_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> BinaryCounts:
        return cls(**{k: int(data[k]) for k in ("tp", "fp", "tn", "fn")})


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def predicted_open(two_class_logits: Tensor) -> Tensor:
    """P(open) >= 0.5 on [B, 2] margin-free logits  <=>  logit_open >= logit_closed."""
    return two_class_logits[:, 1] >= two_class_logits[:, 0]


def fisher_ratio(embeddings: Tensor, labels: Tensor, ridge: float = FISHER_RIDGE) -> float:
    """Two-class Fisher criterion at the optimal direction: J* = dmu^T (S_W + lambda I)^-1 dmu.

    dmu = mu_open - mu_closed; S_W = Sigma_closed + Sigma_open (unbiased class covariances);
    lambda = ridge * trace(S_W) / D keeps S_W invertible and J* invariant to the embedding scale.
    J* equals max_w (w^T dmu)^2 / (w^T S_W w). Returns 0.0 when a class has fewer than 2 samples.
    """
    x = embeddings.detach().to(torch.float64).cpu()
    y = labels.detach().cpu().bool()
    if int(y.sum()) < 2 or int((~y).sum()) < 2:
        return 0.0
    pos, neg = x[y], x[~y]
    delta = pos.mean(0) - neg.mean(0)
    s_w = torch.cov(pos.T, correction=1).reshape(x.shape[1], -1) + torch.cov(neg.T, correction=1).reshape(
        x.shape[1], -1
    )
    dim = s_w.shape[0]
    trace = float(torch.trace(s_w))
    lam = ridge * trace / dim if trace > 0 else ridge
    s_w = s_w + lam * torch.eye(dim, dtype=torch.float64)
    solved = torch.linalg.solve(s_w, delta)
    return float(delta @ solved)


@dataclass
class LossMeter:
    """Sample-weighted mean of per-batch mean losses, accumulated in float64 (exact on resume)."""

    total: float = 0.0
    count: int = 0

    def update(self, batch_mean: float, n: int) -> None:
        self.total += batch_mean * n
        self.count += n

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0
