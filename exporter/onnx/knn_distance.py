"""k-nearest neighbours with ``weights="distance"``, exact on training rows (zero distance).

sklearn (``neighbors._base._get_weights``) weighs each neighbour by ``1 / distance``; where a query is at
distance 0 from one or more training rows, those rows weigh 1 and the others 0, so a training row gets its
own label or value. skl2onnx differs there (DESIGN.md "Coverage"). Here the distances are those of
sklearn's KD-tree and ball tree, ``sqrt`` of the squared differences summed feature by feature in order,
and every sum is written in the order numpy adds (``+=`` per neighbour for the classifier's votes,
numpy's pairwise rule for ``np.sum``). Uniform weights go to ``neighbors.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import neighbors
from ._builder import BOOL, DOUBLE, INT64, Graph, Var
from ._context import Context

__all__ = ["convert_knn_classifier", "convert_knn_regressor", "numpy_sum"]

# up to this many features the squared differences are added one by one, as sklearn's trees do
_SEQUENTIAL_FEATURES = 64


def numpy_sum(g: Graph, terms: list[str], hint: str) -> str:
    """``np.sum`` over a contiguous axis of ``len(terms)`` values, in numpy's order (pairwise, blocks of 8)."""
    n = len(terms)
    if n == 0:
        raise ValueError("nothing to add")
    if n > 128:
        raise ValueError(f"{n} terms: numpy's pairwise summation splits these recursively; not reproduced")

    def add(a: str, b: str) -> str:
        return g.op1("Add", [a, b], hint)

    if n < 8:
        total = terms[0]  # numpy starts from 0.0; 0.0 + a == a except for -0.0, which no weight is
        for t in terms[1:]:
            total = add(total, t)
        return total
    r = list(terms[:8])
    for i in range(8, n - n % 8, 8):
        r = [add(r[j], terms[i + j]) for j in range(8)]
    total = add(add(add(r[0], r[1]), add(r[2], r[3])), add(add(r[4], r[5]), add(r[6], r[7])))
    for t in terms[n - n % 8:]:
        total = add(total, t)
    return total


def _check(est: Any) -> None:
    metric, p = est.effective_metric_, est.effective_metric_params_.get("p", getattr(est, "p", 2))
    if metric not in ("euclidean",) and not (metric == "minkowski" and p == 2):
        raise ValueError(f"KNeighbors(metric={est.metric!r}) is not supported; use the euclidean distance")
    if est.n_samples_fit_ > neighbors.MAX_TRAINING_ROWS:
        raise ValueError(f"the model holds {est.n_samples_fit_} training rows; more than "
                         f"{neighbors.MAX_TRAINING_ROWS} would make the exported graph too large")
    if np.ndim(est._y) != 1:
        raise ValueError("multi-output KNeighbors with weights='distance' is not supported")


def _weights(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> tuple[str, list[str]]:
    """(indices [N, k] of the nearest training rows, nearest first; one [N, 1] weight per neighbour)."""
    m = g.matrix(x, "knnd_in")
    train = np.asarray(est._fit_X, dtype=np.float64)
    neighbors.hold_distances(ctx, train)
    xi = g.op1("Unsqueeze", [m.name, g.const(np.array([1], dtype=np.int64), "axis1")], "knnd_x")
    diff = g.op1("Sub", [xi, g.const(train[np.newaxis, :, :], "knnd_train")], "knnd_diff")
    sq = g.op1("Mul", [diff, diff], "knnd_sq")
    width = train.shape[1]
    if width <= _SEQUENTIAL_FEATURES:
        d2 = None
        for j in range(width):
            col = g.op1("Gather", [sq, g.const(np.array(j, dtype=np.int64), "idx0")], "knnd_sqj", axis=2)
            d2 = col if d2 is None else g.op1("Add", [d2, col], "knnd_d2")
        assert d2 is not None
    else:
        d2 = g.op1("ReduceSum", [sq, g.const(np.array([2], dtype=np.int64), "axis2")], "knnd_d2", keepdims=0)
    k = g.const(np.array([est.n_neighbors], dtype=np.int64), "knnd_k")
    near, idx = g.op("TopK", [d2, k], "knnd_top", outputs=2, axis=1, largest=0, sorted=1)
    dist = g.op1("Sqrt", [near], "knnd_dist")
    zero = g.op1("Equal", [dist, g.const(np.float64(0.0), "zero_d")], "knnd_zero")
    inv = g.op1("Div", [g.const(np.float64(1.0), "one_d"), dist], "knnd_inv")
    # a row at distance 0 from training rows: those weigh 1, the others 0
    zero_d = g.op1("Cast", [zero], "knnd_zero_d", to=DOUBLE)
    any_zero = g.op1("Cast", [g.op1("ReduceMax", [zero_d, g.const(np.array([1], dtype=np.int64), "axis1")],
                                    "knnd_anyzero", keepdims=1)], "knnd_anyzero_b", to=BOOL)
    w = g.op1("Where", [any_zero, zero_d, inv], "knnd_w")
    ws = [g.op1("Gather", [w, g.const(np.array([i], dtype=np.int64), "idx")], "knnd_wi", axis=1)
          for i in range(est.n_neighbors)]
    if est._fit_method == "brute":
        g.note("KNeighbors(weights='distance') fitted with algorithm='brute': sklearn's distances come from "
               "the x·x - 2x·y + y·y expansion, the graph's from the differences; equal within rounding")
    return idx, ws


def convert_knn_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    if est.weights != "distance":
        return neighbors.convert_knn_classifier(g, est, x, ctx)
    _check(est)
    n_classes = len(est.classes_)
    idx, ws = _weights(g, est, x, ctx)
    labels = g.op1("Gather", [g.const(np.asarray(est._y, dtype=np.int64), "knnd_y"), idx], "knnd_labels", axis=0)
    classes = g.const(np.arange(n_classes, dtype=np.int64).reshape(1, -1), "knnd_classes")
    # sklearn: proba[rows, label_i] += weight_i, neighbour after neighbour
    votes = None
    for i, w in enumerate(ws):
        li = g.op1("Gather", [labels, g.const(np.array([i], dtype=np.int64), "idx")], "knnd_li", axis=1)
        hit = g.op1("Cast", [g.op1("Equal", [li, classes], "knnd_hit")], "knnd_onehot", to=DOUBLE)
        term = g.op1("Mul", [hit, w], "knnd_vote")
        votes = term if votes is None else g.op1("Add", [votes, term], "knnd_votes")
    assert votes is not None
    cols = [g.op1("Gather", [votes, g.const(np.array([c], dtype=np.int64), "idx")], "knnd_vc", axis=1)
            for c in range(n_classes)]
    proba = g.op1("Div", [votes, numpy_sum(g, cols, "knnd_norm")], "probabilities")
    # sklearn's weighted_mode: the first class with the largest summed weight
    label = g.op1("ArgMax", [votes], "label_index", axis=1, keepdims=0, select_last_index=0)
    return {"probabilities": Var(proba, DOUBLE, n_classes), "label_index": Var(label, INT64, 1)}


def convert_knn_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    if est.weights != "distance":
        return neighbors.convert_knn_regressor(g, est, x, ctx)
    _check(est)
    idx, ws = _weights(g, est, x, ctx)
    vals = g.op1("Gather", [g.const(np.asarray(est._y, dtype=np.float64), "knnd_y"), idx], "knnd_vals", axis=0)
    # sklearn: np.sum(_y[neigh_ind] * weights, axis=1) / np.sum(weights, axis=1)
    terms = []
    for i, w in enumerate(ws):
        vi = g.op1("Gather", [vals, g.const(np.array([i], dtype=np.int64), "idx")], "knnd_vi", axis=1)
        terms.append(g.op1("Mul", [vi, w], "knnd_term"))
    value = g.op1("Div", [numpy_sum(g, terms, "knnd_num"), numpy_sum(g, ws, "knnd_den")], "knnd_value")
    return {"value": Var(value, DOUBLE, 1)}
