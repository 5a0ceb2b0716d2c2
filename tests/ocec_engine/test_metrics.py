"""Binary metrics of "open" at threshold 0.5 and the textbook Fisher criterion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ocec_engine.metrics import BinaryCounts, LossMeter, fisher_ratio, predicted_open


def _counts(pred: list[int], true: list[int]) -> BinaryCounts:
    counts = BinaryCounts()
    counts.update(torch.tensor(pred), torch.tensor(true))
    return counts


def test_binary_scores_treat_open_as_positive() -> None:
    counts = _counts([1, 1, 1, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 1, 1, 0])
    assert counts.to_dict() == {"tp": 3, "fp": 1, "tn": 3, "fn": 1}
    assert counts.precision() == 0.75
    assert counts.recall() == 0.75
    assert counts.f1() == 0.75
    assert counts.accuracy() == 0.75


def test_zero_division_gives_zero() -> None:
    counts = _counts([0, 0], [0, 0])
    assert counts.scores() == {"f1": 0.0, "precision": 0.0, "recall": 0.0, "accuracy": 1.0}
    assert BinaryCounts().accuracy() == 0.0


def test_counts_add_and_round_trip() -> None:
    a = _counts([1, 0], [1, 1])
    b = _counts([1, 1], [0, 1])
    a.add(b)
    assert a.to_dict() == {"tp": 2, "fp": 1, "tn": 0, "fn": 1}
    assert BinaryCounts.from_dict(a.to_dict()) == a


def test_threshold_is_half_probability() -> None:
    logits = torch.tensor([[0.0, 0.0], [1.0, 0.999], [-2.0, 3.0]])
    assert predicted_open(logits).tolist() == [True, False, True]  # p = 0.5 counts as open


def _fisher_numpy(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3) -> float:
    pos, neg = x[y == 1], x[y == 0]
    delta = pos.mean(0) - neg.mean(0)
    s_w = np.cov(pos, rowvar=False) + np.cov(neg, rowvar=False)
    s_w = s_w + ridge * np.trace(s_w) / len(delta) * np.eye(len(delta))
    return float(delta @ np.linalg.solve(s_w, delta))


def test_fisher_ratio_matches_the_formula() -> None:
    gen = np.random.default_rng(0)
    x = gen.normal(size=(200, 6))
    y = (gen.random(200) < 0.4).astype(np.int64)
    x[y == 1] += 0.8
    got = fisher_ratio(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    assert got == pytest.approx(_fisher_numpy(x.astype(np.float32).astype(np.float64), y), rel=1e-9)


def test_fisher_ratio_is_the_best_projected_separation() -> None:
    gen = np.random.default_rng(1)
    x = gen.normal(size=(400, 3)) * np.array([1.0, 3.0, 0.5])
    y = (gen.random(400) < 0.5).astype(np.int64)
    x[y == 1] += np.array([1.0, 1.0, 0.2])
    j_star = fisher_ratio(torch.tensor(x), torch.tensor(y), ridge=0.0)
    for _ in range(50):  # no direction w beats J* = max_w (w.dmu)^2 / w^T S_W w
        w = gen.normal(size=3)
        pos, neg = x[y == 1] @ w, x[y == 0] @ w
        j = (pos.mean() - neg.mean()) ** 2 / (pos.var(ddof=1) + neg.var(ddof=1))
        assert j <= j_star + 1e-9


def test_fisher_ratio_is_scale_invariant_and_grows_with_separation() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(300, 8, generator=gen, dtype=torch.float64)
    y = torch.arange(300) % 2
    near = x + 0.3 * y[:, None]
    far = x + 1.5 * y[:, None]
    assert fisher_ratio(near * 1000.0, y) == pytest.approx(fisher_ratio(near, y), rel=1e-9)
    assert fisher_ratio(far, y) > fisher_ratio(near, y)


def test_fisher_ratio_needs_two_samples_per_class() -> None:
    assert fisher_ratio(torch.randn(5, 4), torch.tensor([1, 0, 0, 0, 0])) == 0.0


def test_loss_meter_weights_by_samples() -> None:
    meter = LossMeter()
    meter.update(1.0, 3)
    meter.update(0.0, 1)
    assert meter.mean == 0.75
    assert LossMeter().mean == 0.0
