"""The array metrics against scikit-learn on fixed arrays (scikit-learn is a test dependency only)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from ocec_engine.evaluation import metrics as m
from ocec_engine.evaluation.thresholds import ThresholdRule, candidates, f1_optimal, for_target


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    """300 scores with ties (two decimals) from two overlapping classes."""
    rng = np.random.default_rng(7)
    labels = rng.random(300) < 0.45
    scores = np.clip(rng.normal(np.where(labels, 0.62, 0.4), 0.18), 0.0, 1.0).round(2)
    return scores, labels


def test_counts_and_scores_at_thresholds(arrays: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = arrays
    for t in (0.0, 0.3, 0.5, 0.62, 1.0):
        pred = s >= t
        row = m.at_threshold(s, y, t)
        tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[False, True]).ravel()
        assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (tp, fp, tn, fn)
        assert row["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
        assert row["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
        assert row["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


def test_sweep_matches_counts_at_each_threshold(arrays: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = arrays
    grid = np.round(np.arange(101) / 100.0, 2)
    for row in m.sweep(s, y, grid):
        counts = m.counts_at(s, y, row["threshold"])
        assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (counts.tp, counts.fp, counts.tn, counts.fn)


def test_roc_and_pr_match_sklearn(arrays: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = arrays
    c = m.curve(s, y)
    fpr, tpr = m.roc_points(c)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(c.thresholds, sk_thr[1:])
    assert m.roc_auc(c) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert m.pr_auc(c) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    sk_p, sk_r, _ = skm.precision_recall_curve(y, s, drop_intermediate=False)
    recall, precision = m.pr_points(c)
    np.testing.assert_allclose(recall, sk_r[::-1][1:])  # sklearn: ascending thresholds + (1, 0) end
    np.testing.assert_allclose(precision, sk_p[::-1][1:])


def test_eer_is_where_fpr_meets_fnr(arrays: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = arrays
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    fnr = 1.0 - sk_tpr
    i = 1 + int(np.argmin(np.abs(sk_fpr[1:] - fnr[1:])))
    got = m.eer(m.curve(s, y))
    assert got["value"] == pytest.approx((sk_fpr[i] + fnr[i]) / 2)
    assert got["threshold"] == pytest.approx(sk_thr[i])
    assert 0.0 < got["value"] < 0.5


def test_f1_optimal_threshold_matches_sklearn(arrays: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = arrays
    best = f1_optimal(m.curve(s, y))
    pred = s[None, :] >= np.unique(s)[:, None]  # brute force over every distinct threshold
    tp, fp, fn = (pred & y).sum(1), (pred & ~y).sum(1), (~pred & y).sum(1)
    brute = (2 * tp / (2 * tp + fp + fn)).max()
    assert best["f1"] == pytest.approx(brute)
    assert skm.f1_score(y, s >= best["threshold"]) == pytest.approx(brute)


@pytest.mark.parametrize("rule", [ThresholdRule.PRECISION_CLOSED, ThresholdRule.RECALL_CLOSED])
def test_target_thresholds_for_closed(arrays: tuple[np.ndarray, np.ndarray], rule: ThresholdRule) -> None:
    s, y = arrays
    c = m.curve(s, y)
    target = 0.8
    found = for_target(c, rule, target)
    t = found["threshold"]
    assert t is not None
    closed_pred, closed_true = s < t, ~y
    precision = skm.precision_score(closed_true, closed_pred, zero_division=0)
    recall = skm.recall_score(closed_true, closed_pred, zero_division=0)
    met, other = (precision, recall) if rule is ThresholdRule.PRECISION_CLOSED else (recall, precision)
    assert met >= target and found["achieved"] == pytest.approx(met)
    # no candidate meeting the target does better on the other metric (brute force)
    pred = s[None, :] < candidates(c).thresholds[:, None]
    tn = (pred & closed_true).sum(1)
    p = np.divide(tn, pred.sum(1), out=np.zeros(len(tn)), where=pred.sum(1) > 0)
    r = tn / closed_true.sum()
    cm, co = (p, r) if rule is ThresholdRule.PRECISION_CLOSED else (r, p)
    assert np.all((cm < target) | (co <= other + 1e-12))
    assert for_target(c, rule, 1.01)["threshold"] is None


def test_calibration_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    s = rng.random(500)
    y = rng.random(500) < s**1.5
    from ocec_engine.evaluation.calibration import calibration

    got = calibration(s, y)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
    filled = [b for b in got["bins"] if b["count"]]
    np.testing.assert_allclose([b["accuracy"] for b in filled], prob_true)
    np.testing.assert_allclose([b["confidence"] for b in filled], prob_pred)
    counts = np.histogram(s, bins=10, range=(0, 1))[0]
    ece = np.sum(counts[counts > 0] / len(s) * np.abs(prob_true - prob_pred))
    assert got["ece"] == pytest.approx(ece)


def test_weighted_metrics_match_sklearn_sample_weights(arrays: tuple[np.ndarray, np.ndarray]) -> None:
    from ocec_engine.evaluation.bootstrap import weighted_auc, weighted_f1

    s, y = arrays
    rng = np.random.default_rng(1)
    w = rng.multinomial(len(s), np.full(len(s), 1 / len(s)), size=3).astype(float)
    aucs = weighted_auc(s, y, w)
    f1s = weighted_f1(s >= 0.5, y, w)
    for k in range(3):
        assert aucs[k] == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w[k]))
        assert f1s[k] == pytest.approx(skm.f1_score(y, s >= 0.5, sample_weight=w[k]))


def test_bootstrap_is_seeded_and_brackets_the_estimate(arrays: tuple[np.ndarray, np.ndarray]) -> None:
    from ocec_engine.evaluation.bootstrap import bootstrap

    s, y = arrays
    a = bootstrap(s, y, 0.5, 500, seed=4)
    assert a == bootstrap(s, y, 0.5, 500, seed=4)
    assert a != bootstrap(s, y, 0.5, 500, seed=5)
    lo, hi = a["roc_auc"]
    assert lo < skm.roc_auc_score(y, s) < hi
    lo, hi = a["f1"]
    assert lo < skm.f1_score(y, s >= 0.5) < hi
    assert bootstrap(s, y, 0.5, 0, seed=4)["resamples"] == 0


def test_degenerate_inputs_are_defined() -> None:
    s = np.array([0.2, 0.7, 0.7])
    y = np.array([True, True, True])
    c = m.curve(s, y)
    assert m.roc_auc(c) == 0.0 and m.eer(c)["value"] == 0.0
    assert m.pr_auc(c) == pytest.approx(skm.average_precision_score(y, s))
    empty = m.curve(np.zeros(0), np.zeros(0, dtype=bool))
    assert m.roc_auc(empty) == 0.0 and m.pr_auc(empty) == 0.0
    assert len(m.downsample(1000, 200)) <= 200 and m.downsample(1000, 200)[-1] == 999
