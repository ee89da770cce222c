"""Holdout metrics written once, over bootstrap weights: the point estimate is the all-ones weight row.

Every metric is a function of ``(answers, W)`` where ``W`` is a ``(B, n)`` matrix of how often each holdout row
appears in each of ``B`` resamples. One implementation gives the value and its interval, so the two cannot
disagree, and a resample is a matrix product instead of a Python loop (1,000 resamples of a few hundred rows
in milliseconds). Each metric equals ``sklearn.metrics``' own on the rows a weight row stands for (tested
against sklearn; never against this module itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Answers", "METRICS", "LOWER_IS_BETTER", "METRIC_RANGES", "MAIN_METRIC", "answers_for", "compute"]


@dataclass(frozen=True)
class Answers:
    """What a model answered on the holdout, in the shape the metrics read."""

    task: str
    y: np.ndarray  # classification: class index into ``classes``; regression: float values; anomaly: unused
    pred: np.ndarray  # classification: class index; regression: float; anomaly: 1 for an outlier, else 0
    proba: np.ndarray | None = None  # classification: (n, k), columns in ``classes`` order
    classes: tuple[str, ...] = ()
    expected_rate: float | None = None  # anomaly: the contamination the model was fitted with

    def __len__(self) -> int:
        return len(self.pred)

    def subset(self, rows: np.ndarray) -> Answers:
        return Answers(self.task, self.y[rows], self.pred[rows], None if self.proba is None else self.proba[rows],
                       self.classes, self.expected_rate)


Metric = Callable[[Answers, np.ndarray], np.ndarray]


def _mean(v: np.ndarray, W: np.ndarray) -> np.ndarray:
    return np.asarray((W @ v) / W.sum(axis=1))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _nanmean_rows(m: np.ndarray) -> np.ndarray:
    # a class absent from a resample has no recall / AUC: averaged over the classes that are there, as sklearn
    counted = np.sum(~np.isnan(m), axis=1)
    total = np.nansum(m, axis=1)
    return np.where(counted > 0, total / np.maximum(counted, 1), np.nan)


def _onehot(a: Answers) -> np.ndarray:
    return (a.y[:, None] == np.arange(len(a.classes))[None, :]).astype(np.float64)


def accuracy(a: Answers, W: np.ndarray) -> np.ndarray:
    return _mean((a.y == a.pred).astype(np.float64), W)


def balanced_accuracy(a: Answers, W: np.ndarray) -> np.ndarray:
    Y = _onehot(a)
    hit = Y * (a.y == a.pred)[:, None]
    return _nanmean_rows(_ratio(W @ hit, W @ Y))


def f1_macro(a: Answers, W: np.ndarray) -> np.ndarray:
    Y = _onehot(a)
    P = (a.pred[:, None] == np.arange(len(a.classes))[None, :]).astype(np.float64)
    tp, t, p = W @ (Y * P), W @ Y, W @ P
    # sklearn averages over the labels present in y_true or y_pred; for those 2tp + fp + fn = t + p > 0
    return _nanmean_rows(_ratio(2 * tp, t + p))


def log_loss(a: Answers, W: np.ndarray) -> np.ndarray:
    assert a.proba is not None
    eps = np.finfo(a.proba.dtype).eps  # sklearn clips to [eps, 1 - eps] for the probabilities' dtype
    p_true = np.clip(a.proba[np.arange(len(a)), a.y], eps, 1 - eps)
    return _mean(-np.log(p_true), W)


def brier(a: Answers, W: np.ndarray) -> np.ndarray:
    assert a.proba is not None
    if len(a.classes) == 2:  # sklearn's binary Brier score: the positive class only (half the two-class sum)
        return _mean((a.proba[:, 1] - (a.y == 1)) ** 2, W)
    return _mean(np.sum((a.proba - _onehot(a)) ** 2, axis=1), W)


def _ranked(score: np.ndarray, positive: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight per distinct score, highest score first: (groups, B) each.

    Rows of the transposed weights, so that the cumulative sums below run down contiguous rows of B resamples
    (numpy's cumsum along the last axis is several times slower)."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    Ws = W.T[order]
    gp = Ws * positive[order][:, None]
    gn = Ws - gp
    ties = s[1:] == s[:-1]
    if ties.any():  # tied scores are one threshold: sum their weights (skipped when every score differs)
        starts = np.flatnonzero(np.r_[True, ~ties])
        return np.add.reduceat(gp, starts, axis=0), np.add.reduceat(gn, starts, axis=0)
    return gp, gn


def _auc_ap(score: np.ndarray, positive: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gp, gn = _ranked(score, positive, W)
    tp, fp = np.cumsum(gp, axis=0), np.cumsum(gn, axis=0)
    n_pos, n_neg = tp[-1].copy(), fp[-1].copy()
    # ROC-AUC as Mann-Whitney (a tie counts one half), what roc_auc_score's trapezoids add up to
    fp -= 0.5 * gn
    auc = _ratio(n_pos * n_neg - np.einsum("ij,ij->j", gp, fp), n_pos * n_neg)
    # average precision: precision at each distinct threshold, weighted by the recall it adds (sklearn's AP);
    # where gp is 0 the precision does not count, so an empty prefix (0 / 0) is read as 0
    fp += 0.5 * gn
    fp += tp
    np.maximum(fp, 1e-300, out=fp)
    np.divide(tp, fp, out=tp)
    ap = _ratio(np.einsum("ij,ij->j", gp, tp), n_pos)
    return auc, ap


def _ovr(a: Answers, W: np.ndarray, which: int) -> np.ndarray:
    assert a.proba is not None
    if len(a.classes) == 2:
        return _auc_ap(a.proba[:, 1], a.y == 1, W)[which]
    per_class = np.stack([_auc_ap(a.proba[:, k], a.y == k, W)[which] for k in range(len(a.classes))], axis=1)
    return _nanmean_rows(per_class)


def roc_auc(a: Answers, W: np.ndarray) -> np.ndarray:
    return _ovr(a, W, 0)


def pr_auc(a: Answers, W: np.ndarray) -> np.ndarray:
    return _ovr(a, W, 1)


def _both_auc(a: Answers, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    assert a.proba is not None
    if len(a.classes) == 2:
        return _auc_ap(a.proba[:, 1], a.y == 1, W)
    per = [_auc_ap(a.proba[:, k], a.y == k, W) for k in range(len(a.classes))]
    return (_nanmean_rows(np.stack([p[0] for p in per], axis=1)),
            _nanmean_rows(np.stack([p[1] for p in per], axis=1)))


def _err(a: Answers) -> np.ndarray:
    return np.asarray(a.y - a.pred, dtype=np.float64)


def mae(a: Answers, W: np.ndarray) -> np.ndarray:
    return _mean(np.abs(_err(a)), W)


def rmse(a: Answers, W: np.ndarray) -> np.ndarray:
    return np.sqrt(_mean(_err(a) ** 2, W))


def r2(a: Answers, W: np.ndarray) -> np.ndarray:
    n = W.sum(axis=1)
    ss_res = W @ (_err(a) ** 2)
    ss_tot = W @ (a.y ** 2) - (W @ a.y) ** 2 / n
    ss_tot = np.maximum(ss_tot, 0.0)
    # sklearn's force_finite: a constant target gives 1.0 for a perfect fit, else 0.0
    return np.where(ss_tot > 1e-12 * np.maximum(W @ (a.y ** 2), 1e-300), 1.0 - _ratio(ss_res, ss_tot),
                    np.where(ss_res == 0, 1.0, 0.0))


def mape(a: Answers, W: np.ndarray) -> np.ndarray:
    # sklearn divides by max(|y|, machine epsilon): a zero target gives a huge but finite term
    return _mean(np.abs(_err(a)) / np.maximum(np.abs(a.y), np.finfo(np.float64).eps), W)


def _weighted_quantile(values: np.ndarray, W: np.ndarray, q: float) -> np.ndarray:
    """np.quantile (linear interpolation) of each resample, the resample being ``values`` repeated by weight."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    C = np.cumsum(W[:, order], axis=1)
    h = (C[:, -1] - 1) * q
    lo = np.floor(h)
    i_lo = np.minimum(np.sum(C <= lo[:, None], axis=1), len(v) - 1)
    i_hi = np.minimum(np.sum(C <= lo[:, None] + 1, axis=1), len(v) - 1)
    return np.asarray(v[i_lo] + (h - lo) * (v[i_hi] - v[i_lo]))


def _abs_error_q(q: float) -> Metric:
    def metric(a: Answers, W: np.ndarray) -> np.ndarray:
        return _weighted_quantile(np.abs(_err(a)), W, q)

    return metric


def contamination_observed(a: Answers, W: np.ndarray) -> np.ndarray:
    return _mean(a.pred.astype(np.float64), W)


def contamination_gap(a: Answers, W: np.ndarray) -> np.ndarray:
    observed = contamination_observed(a, W)
    expected = observed if a.expected_rate is None else a.expected_rate
    return np.asarray(np.abs(observed - expected))


_FUNCS: dict[str, dict[str, Metric]] = {
    "classification": {"accuracy": accuracy, "balanced_accuracy": balanced_accuracy, "log_loss": log_loss,
                       "f1_macro": f1_macro, "roc_auc": roc_auc, "pr_auc": pr_auc, "brier": brier},
    "regression": {"mae": mae, "rmse": rmse, "r2": r2, "mape": mape, "abs_error_p50": _abs_error_q(0.5),
                   "abs_error_p90": _abs_error_q(0.9), "abs_error_p95": _abs_error_q(0.95)},
    "anomaly": {"contamination_observed": contamination_observed, "contamination_gap": contamination_gap},
}
METRICS: dict[str, tuple[str, ...]] = {task: tuple(f) for task, f in _FUNCS.items()}
# the direction of every metric: a gate on one of these is a maximum, on any other a minimum
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "mae", "rmse", "mape", "abs_error_p50", "abs_error_p90",
                             "abs_error_p95", "contamination_gap"})
_UNIT, _POS = (0.0, 1.0), (0.0, float("inf"))
# the values a gate can sensibly name, per metric (a gate outside them is a typo, caught at config load)
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "accuracy": _UNIT, "balanced_accuracy": _UNIT, "f1_macro": _UNIT, "roc_auc": _UNIT, "pr_auc": _UNIT,
    "brier": (0.0, 2.0), "log_loss": _POS, "mae": _POS, "rmse": _POS, "mape": _POS, "r2": (float("-inf"), 1.0),
    "abs_error_p50": _POS, "abs_error_p90": _POS, "abs_error_p95": _POS,
    "contamination_observed": _UNIT, "contamination_gap": _UNIT,
}
# the metric a slice is ranked by (the worst slice) and the card leads with
MAIN_METRIC = {"classification": "accuracy", "regression": "mae", "anomaly": "contamination_gap"}


def answers_for(task: str, model: object, X: object, y: object, classes: tuple[str, ...] = ()) -> Answers:
    """Ask a fitted estimator or pipeline for its holdout answers (``classes``: the model's, in its order)."""
    pred = np.asarray(model.predict(X))  # type: ignore[attr-defined]
    if task == "classification":
        index = {c: i for i, c in enumerate(classes)}
        y_idx = np.array([index.get(str(v), -1) for v in np.asarray(y)], dtype=np.int64)
        p_idx = np.array([index[str(v)] for v in pred], dtype=np.int64)
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)  # type: ignore[attr-defined]
        return Answers(task, y_idx, p_idx, proba, classes)
    if task == "regression":
        return Answers(task, np.asarray(y, dtype=np.float64), pred.astype(np.float64))
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    rate = getattr(est, "contamination", None)
    return Answers(task, np.zeros(len(pred)), (pred == -1).astype(np.int64),
                   expected_rate=float(rate) if isinstance(rate, float) else None)


def compute(a: Answers, W: np.ndarray, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Each metric of ``a.task`` (or ``names``) for each weight row of ``W``: name -> (B,) array."""
    funcs = _FUNCS[a.task]
    wanted = names or METRICS[a.task]
    # ROC-AUC and PR-AUC share their one expensive step (sort and cumulate per class): done once for both
    shared = dict(zip(("roc_auc", "pr_auc"), _both_auc(a, W), strict=True)) \
        if {"roc_auc", "pr_auc"} <= set(wanted) else {}
    return {name: np.asarray(shared[name] if name in shared else funcs[name](a, W), dtype=np.float64)
            for name in wanted}
