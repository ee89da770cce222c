"""Every holdout metric equals sklearn.metrics' own, on the holdout and on a bootstrap resample of it.

The reference is sklearn (and numpy for the error quantiles) called on the rows themselves; the resample
check calls sklearn on the repeated rows, so the weight-matrix arithmetic is checked, not assumed.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from skedge.trainer.intervals import Bootstrap, weights
from skedge.trainer.metrics import METRICS, Answers, compute

CLASSES = ("Adelie", "Chinstrap", "Gentoo")


def _classification(k: int, n: int, seed: int, *, ties: bool = False) -> Answers:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * (y[:, None] == np.arange(k))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:  # a forest's probabilities: few distinct values, many exact ties, some exact 0 and 1
        p = np.round(p * 10) / 10
        p[:, -1] = 1 - p[:, :-1].sum(axis=1)
        p = np.clip(p, 0, 1)
        p /= p.sum(axis=1, keepdims=True)
    return Answers("classification", y, p.argmax(axis=1), p, CLASSES[:k] if k <= 3 else tuple(map(str, range(k))))


def _sklearn_classification(a: Answers, rows: np.ndarray) -> dict[str, float]:
    y, p, pred = a.y[rows], a.proba[rows], a.pred[rows]  # type: ignore[index]
    k = len(a.classes)
    labels = list(range(k))
    if k == 2:
        auc, ap = skm.roc_auc_score(y, p[:, 1]), skm.average_precision_score(y, p[:, 1])
        brier = skm.brier_score_loss(y, p[:, 1])
    else:
        auc = skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels)
        ap = skm.average_precision_score(label_binarize(y, classes=labels), p, average="macro")
        brier = skm.brier_score_loss(y, p, labels=labels)
    return {"accuracy": skm.accuracy_score(y, pred), "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "log_loss": skm.log_loss(y, p, labels=labels), "f1_macro": skm.f1_score(y, pred, average="macro"),
            "roc_auc": auc, "pr_auc": ap, "brier": brier}


@pytest.mark.parametrize("k,ties", [(2, False), (2, True), (3, False), (3, True), (5, True)])
def test_classification_metrics_equal_sklearn(k: int, ties: bool) -> None:
    a = _classification(k, 400, seed=k + 10 * ties, ties=ties)
    ours = {m: float(v[0]) for m, v in compute(a, np.ones((1, len(a)))).items()}
    ref = _sklearn_classification(a, np.arange(len(a)))
    assert set(ours) == set(METRICS["classification"]) == set(ref)
    for m, v in ref.items():
        assert ours[m] == pytest.approx(v, rel=1e-12, abs=1e-12), m


@pytest.mark.parametrize("k", [2, 3])
def test_classification_metrics_on_resamples_equal_sklearn_on_the_repeated_rows(k: int) -> None:
    a = _classification(k, 150, seed=3, ties=True)
    W = next(weights(len(a), Bootstrap(resamples=5, seed=1)))
    ours = compute(a, W)
    for b in range(W.shape[0]):
        rows = np.repeat(np.arange(len(a)), W[b].astype(int))
        for m, v in _sklearn_classification(a, rows).items():
            assert ours[m][b] == pytest.approx(v, rel=1e-12, abs=1e-12), (m, b)


def _regression(n: int, seed: int) -> Answers:
    rng = np.random.default_rng(seed)
    y = rng.normal(4200, 800, n)
    return Answers("regression", y, y + rng.normal(0, 300, n) + 50)


def _sklearn_regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = np.abs(y - pred)
    return {"mae": skm.mean_absolute_error(y, pred), "rmse": skm.root_mean_squared_error(y, pred),
            "r2": skm.r2_score(y, pred), "mape": skm.mean_absolute_percentage_error(y, pred),
            # the median is sklearn's median_absolute_error; the other quantiles numpy's (linear interpolation)
            "abs_error_p50": skm.median_absolute_error(y, pred), "abs_error_p90": float(np.quantile(err, 0.9)),
            "abs_error_p95": float(np.quantile(err, 0.95))}


def test_regression_metrics_equal_sklearn_on_the_holdout_and_on_resamples() -> None:
    a = _regression(333, seed=5)
    ours = {m: float(v[0]) for m, v in compute(a, np.ones((1, len(a)))).items()}
    ref = _sklearn_regression(a.y, a.pred)
    assert set(ours) == set(METRICS["regression"]) == set(ref)
    for m, v in ref.items():
        assert ours[m] == pytest.approx(v, rel=1e-10), m
    W = next(weights(len(a), Bootstrap(resamples=4, seed=9)))
    draws = compute(a, W)
    for b in range(W.shape[0]):
        rows = np.repeat(np.arange(len(a)), W[b].astype(int))
        for m, v in _sklearn_regression(a.y[rows], a.pred[rows]).items():
            assert draws[m][b] == pytest.approx(v, rel=1e-9), (m, b)


def test_r2_of_a_constant_target_follows_sklearn() -> None:
    y = np.full(20, 3.0)
    for pred in (y.copy(), y + 1.0):
        ours = float(compute(Answers("regression", y, pred), np.ones((1, 20)), ("r2",))["r2"][0])
        assert ours == skm.r2_score(y, pred)


def test_anomaly_rate_metrics() -> None:
    pred = np.array([1] * 12 + [0] * 88)  # 12 outliers in 100 rows, fitted with contamination 0.1
    got = compute(Answers("anomaly", np.zeros(100), pred, expected_rate=0.1), np.ones((1, 100)))
    assert got["contamination_observed"][0] == pytest.approx(0.12)
    assert got["contamination_gap"][0] == pytest.approx(0.02)
