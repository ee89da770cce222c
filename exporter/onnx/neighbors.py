"""Converters for k-nearest-neighbour models (uniform weights, euclidean distance).

Distances are squared differences summed feature by feature in float64, as
sklearn's KD-tree and ball-tree compute them (not the ``x² - 2xy + y²`` shortcut,
which rounds differently), and the k smallest are taken with TopK. The graph
holds the training set, so a large one makes a large model: the exporter says
so by refusing more than ``MAX_TRAINING_ROWS`` rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, INT64, Graph, Var
from ._context import Context

__all__ = ["convert_knn_classifier", "convert_knn_regressor", "MAX_TRAINING_ROWS", "hold_distances"]

MAX_TRAINING_ROWS = 20_000


def _check(est: Any) -> None:
    if est.weights != "uniform":
        raise ValueError(f"KNeighbors(weights={est.weights!r}) is not supported; use weights='uniform'")
    metric, p = est.effective_metric_, est.effective_metric_params_.get("p", getattr(est, "p", 2))
    if metric not in ("euclidean",) and not (metric == "minkowski" and p == 2):
        raise ValueError(f"KNeighbors(metric={est.metric!r}) is not supported; use the euclidean distance")
    if est.n_samples_fit_ > MAX_TRAINING_ROWS:
        raise ValueError(f"the model holds {est.n_samples_fit_} training rows; more than {MAX_TRAINING_ROWS} "
                         "would make the exported graph too large")


def hold_distances(ctx: Context, train: np.ndarray) -> None:
    """Record what a distance graph holds per input row: its [rows, training rows, features] difference and
    square, and what is built from them (four such doubles per training value is an upper bound for both
    kNN graphs). A batch of 8,192 rows against 10,000 × 8 training values would otherwise take 5 GB."""
    ctx.row_bytes = max(ctx.row_bytes, 4 * 8 * int(train.size))


def _neighbours(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> str:
    """[N, k] int64: indices of the k nearest training rows, nearest first."""
    m = g.matrix(x, "knn_in")
    train = np.asarray(est._fit_X, dtype=np.float64)
    hold_distances(ctx, train)
    xi = g.op1("Unsqueeze", [m.name, g.const(np.array([1], dtype=np.int64), "axis1")], "knn_x")
    diff = g.op1("Sub", [xi, g.const(train[np.newaxis, :, :], "knn_train")], "knn_diff")
    sq = g.op1("Mul", [diff, diff], "knn_sq")
    d2 = g.op1("ReduceSum", [sq, g.const(np.array([2], dtype=np.int64), "axis2")], "knn_d2", keepdims=0)
    k = g.const(np.array([est.n_neighbors], dtype=np.int64), "knn_k")
    _, idx = g.op("TopK", [d2, k], "knn_top", outputs=2, axis=1, largest=0, sorted=1)
    return idx


def convert_knn_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    _check(est)
    if np.ndim(est._y) != 1:
        raise ValueError("multi-output KNeighborsClassifier is not supported")
    n_classes = len(est.classes_)
    idx = _neighbours(g, est, x, ctx)
    labels = g.op1("Gather", [g.const(np.asarray(est._y, dtype=np.int64), "knn_y"), idx], "knn_labels", axis=0)
    # votes: [N, k, 1] == [C] -> [N, k, C]; onnxruntime has no double OneHot kernel
    lab3 = g.op1("Unsqueeze", [labels, g.const(np.array([2], dtype=np.int64), "axis2")], "knn_lab3")
    hit = g.op1("Equal", [lab3, g.const(np.arange(n_classes, dtype=np.int64), "knn_classes")], "knn_hit")
    onehot = g.op1("Cast", [hit], "knn_onehot", to=DOUBLE)
    counts = g.op1("ReduceSum", [onehot, g.const(np.array([1], dtype=np.int64), "axis1")], "knn_counts",
                   keepdims=0)
    # sklearn: counts / counts.sum(axis=1) — the sum is k
    proba = g.op1("Div", [counts, g.const(np.float64(est.n_neighbors), "knn_kf")], "probabilities")
    label = g.op1("ArgMax", [proba], "label_index", axis=1, keepdims=0, select_last_index=0)
    return {"probabilities": Var(proba, DOUBLE, n_classes), "label_index": Var(label, INT64, 1)}


def convert_knn_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    _check(est)
    y = np.asarray(est._y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError("multi-output KNeighborsRegressor is not supported")
    idx = _neighbours(g, est, x, ctx)
    vals = g.op1("Gather", [g.const(y, "knn_y"), idx], "knn_vals", axis=0)
    mean = g.op1("ReduceMean", [vals, g.const(np.array([1], dtype=np.int64), "axis1")], "knn_value", keepdims=1)
    return {"value": Var(mean, DOUBLE, 1)}
