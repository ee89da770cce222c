"""Core ML converters for tree ensembles: one ``TreeEnsembleRegressor`` sums the trees in double.

Every ensemble, classifier or regressor, becomes a regressor whose prediction
is ``basePredictionValue + sum of the reached leaves' evaluation values`` (one
dimension per class or per raw score), then the head that turns sums into
sklearn's outputs: a ``Scaler`` of ``1/n_trees`` for forests, the softmax head
for boosting, and skedge's exact label tree (``heads.py``).

Comparisons. sklearn's trees (single trees, forests, GradientBoosting) cast
the input to float32 and test ``float32(x) <= threshold`` with a double
threshold. Core ML's branch tests ``x <= branchFeatureValue`` on the double
input, so each threshold ``t`` is replaced by ``T``, the largest double with
``x <= T  <=>  float32(x) <= t`` for every double ``x`` (``float32_split``):
the rounding boundary above the largest float32 not above ``t``. ``T`` lies
strictly between two adjacent float32 values, so the test also holds if a
runtime compared ``float32(x)`` instead. HistGradientBoosting compares in
double: its thresholds are written as they are.

Missing values: ``missingValueTracksTrueChild`` (true child = sklearn's left)
from ``tree_.missing_go_to_left`` / the predictor's ``missing_go_to_left``;
GradientBoosting's ``predict_stages`` ignores that flag and sends NaN right
(``NaN <= t`` is false), so its nodes say false.

Sums. sklearn adds the trees' outputs one tree after another onto zeros (or
the boosting baseline); leaves carry exactly the addends sklearn uses
(``tree_.value`` class fractions, ``learning_rate * value``, the predictor's
leaf value), so the sums agree to the last bit when added in tree order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._sklearn_trees import hgb_trees
from ._builder import ARRAY, DOUBLE, Builder, CoreMLUnsupported, Var
from ._context import Context
from ._proto import proto
from .heads import argmax_label, scale, softmax, threshold_label

__all__ = [
    "Ensemble",
    "float32_split",
    "convert_tree_classifier",
    "convert_tree_regressor",
    "convert_forest_classifier",
    "convert_forest_regressor",
    "convert_gb_classifier",
    "convert_gb_regressor",
    "convert_hgb_classifier",
    "convert_hgb_regressor",
]

_F32_MAX = float(np.finfo(np.float32).max)
_HALF_ULP_AT_MAX = 2.0 ** 103  # half the float32 spacing just below 2^128
_F32_LIMIT = _F32_MAX + _HALF_ULP_AT_MAX  # doubles from here on round to float32 infinity


def float32_split(t: float) -> float:
    """The largest double ``T`` with ``x <= T`` exactly when ``float32(x) <= t``, for every double ``x``.

    ``f`` = the largest float32 ``<= t``; float32 rounding sends ``x`` to ``f`` or
    below exactly when ``x`` is at most the midpoint ``m`` between ``f`` and the
    next float32, ``m`` itself included only when it rounds down (ties go to the
    even significand). All arithmetic is in float64 on purpose: numpy 2 compares
    ``np.float32(x) <= python_float`` in float32. sklearn writes ``+inf`` for a
    split that sends every present value left and only NaN right: it stays.
    """
    t = float(t)
    if t != t:
        raise ValueError("a NaN tree threshold")
    if t == np.inf:
        return t
    if t < -_F32_MAX:  # only values that round to float32 -inf pass: x <= -F32_LIMIT (the tie goes to -inf)
        return -_F32_LIMIT
    with np.errstate(over="ignore"):  # t beyond the float32 range rounds to inf; the next line steps back
        f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    up = np.nextafter(f, np.float32(np.inf))
    m = float(f) + _HALF_ULP_AT_MAX if np.isinf(up) else (float(f) + float(up)) / 2.0  # exact in float64
    even = (int(np.asarray(f, dtype=np.float32).view(np.uint32)) & 1) == 0
    return m if even else float(np.nextafter(m, -np.inf))


class Ensemble:
    """Flattened nodes of many trees, written straight into ``TreeEnsembleParameters``."""

    def __init__(self, dims: int, base: Sequence[float]) -> None:
        self.params = proto().TreeEnsemble_pb2.TreeEnsembleParameters()
        self.params.numPredictionDimensions = dims
        self.params.basePredictionValue.extend([float(v) for v in base])
        self.n_trees = 0
        tn = proto().TreeEnsemble_pb2.TreeEnsembleParameters.TreeNode
        self._leaf, self._leq = tn.LeafNode, tn.BranchOnValueLessThanEqual

    def add_tree(self, left: np.ndarray, right: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
                 missing_left: np.ndarray, leaves: dict[int, list[tuple[int, float]]]) -> None:
        """``leaves[node] = [(dimension, value), ...]``; ``threshold`` is already in Core ML's terms."""
        tid = self.n_trees
        self.n_trees += 1
        for node in range(len(left)):
            n = self.params.nodes.add()
            n.treeId = tid
            n.nodeId = node
            if left[node] == -1:
                n.nodeBehavior = self._leaf
                # adding 0.0 changes no sum: leave it out, but a leaf still states one value
                # (a leaf of all zeros, e.g. a zero-inflated target, says 0.0 for its first dimension)
                values = [(dim, value) for dim, value in leaves[node] if value != 0.0] or leaves[node][:1]
                for dim, value in values:
                    e = n.evaluationInfo.add()
                    e.evaluationIndex = dim
                    e.evaluationValue = float(value)
            else:
                n.nodeBehavior = self._leq
                n.branchFeatureIndex = int(feature[node])
                n.branchFeatureValue = float(threshold[node])
                n.trueChildNodeId = int(left[node])
                n.falseChildNodeId = int(right[node])
                n.missingValueTracksTrueChild = bool(missing_left[node])

    def emit(self, b: Builder, x: Var, out: Var) -> Var:
        m = b.model([x], [out], "trees")
        m.description.predictedFeatureName = out.name
        m.treeEnsembleRegressor.treeEnsemble.CopyFrom(self.params)
        m.treeEnsembleRegressor.postEvaluationTransform = proto().TreeEnsemble_pb2.NoTransform
        return out


def _check_single_output(est: Any) -> None:
    if getattr(est, "n_outputs_", 1) != 1:
        raise CoreMLUnsupported("multi-output trees are not supported")


def _sk_tree(tree: Any, *, nan_follows_flag: bool = True) -> tuple[np.ndarray, ...]:
    """children, features, Core ML thresholds and NaN routing of a fitted sklearn tree."""
    t = tree.tree_
    left, right = t.children_left, t.children_right
    thresholds = [float32_split(v) if left[i] != -1 else 0.0 for i, v in enumerate(t.threshold)]
    missing = getattr(t, "missing_go_to_left", None)
    if missing is None or not nan_follows_flag:
        missing = np.zeros(t.node_count, dtype=np.uint8)
    return left, right, t.feature, np.asarray(thresholds), np.asarray(missing)


def _input(b: Builder, x: Any, n_features: int) -> Var:
    xa = b.vectorize(x)
    if xa.width != n_features:
        raise ValueError(f"the estimator takes {n_features} columns, the steps before it give {xa.width}")
    return xa


def _forest_classifier(b: Builder, trees: list[Any], classes: Any, x: Any, ctx: Context, n_features: int
                       ) -> dict[str, Var]:
    xa = _input(b, x, n_features)
    k = len(classes)
    ens = Ensemble(k, [0.0] * k)
    for tree in trees:
        _check_single_output(tree)
        left, right, feat, thr, miss = _sk_tree(tree)
        # sklearn >= 1.4 stores class fractions in tree_.value and predict_proba returns them as they are
        values = np.asarray(tree.tree_.value[:, 0, :k], dtype=np.float64)
        leaves = {int(n): [(c, float(values[n, c])) for c in range(k)] for n in np.where(left == -1)[0]}
        ens.add_tree(left, right, feat, thr, miss, leaves)
    out_name = ctx.outputs["probabilities"]
    if len(trees) == 1:
        proba = ens.emit(b, xa, Var(out_name, ARRAY, k))
    else:  # sklearn: the sum over trees, then / n_estimators
        total = ens.emit(b, xa, b.var("tree_sum", ARRAY, k))
        proba = scale(b, total, 1.0 / len(trees), Var(out_name, ARRAY, k))
    return {"label": argmax_label(b, proba, classes, ctx.outputs["label"]), "probabilities": proba}


def _forest_regressor(b: Builder, trees: list[Any], x: Any, ctx: Context, n_features: int) -> dict[str, Var]:
    xa = _input(b, x, n_features)
    ens = Ensemble(1, [0.0])
    for tree in trees:
        _check_single_output(tree)
        left, right, feat, thr, miss = _sk_tree(tree)
        values = np.asarray(tree.tree_.value[:, 0, 0], dtype=np.float64)
        ens.add_tree(left, right, feat, thr, miss, {int(n): [(0, float(values[n]))] for n in np.where(left == -1)[0]})
    out = Var(ctx.outputs["value"], DOUBLE)
    if len(trees) == 1:
        return {"value": ens.emit(b, xa, out)}
    total = ens.emit(b, xa, b.var("tree_sum", DOUBLE))
    return {"value": scale(b, total, 1.0 / len(trees), out)}


def convert_tree_classifier(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    return _forest_classifier(b, [est], est.classes_, x, ctx, est.n_features_in_)


def convert_tree_regressor(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    return _forest_regressor(b, [est], x, ctx, est.n_features_in_)


def convert_forest_classifier(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    return _forest_classifier(b, list(est.estimators_), est.classes_, x, ctx, est.n_features_in_)


def convert_forest_regressor(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    return _forest_regressor(b, list(est.estimators_), x, ctx, est.n_features_in_)


def _gb_sums(b: Builder, est: Any, x: Any, binary: bool, out: Var | None = None) -> Var:
    """sklearn's raw predictions: init + sum of learning_rate * leaf value, stage after stage."""
    if est.init_ != "zero" and type(est.init_).__name__ not in ("DummyClassifier", "DummyRegressor"):
        raise CoreMLUnsupported(f"GradientBoosting with init={type(est.init_).__name__} is not supported")
    xa = _input(b, x, est.n_features_in_)
    k = est.estimators_.shape[1]
    init = np.asarray(est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0],
                      dtype=np.float64)
    # binary: dimension 0 stays 0 and dimension 1 is the raw score, ready for the softmax head
    ens = Ensemble(2, [0.0, init[0]]) if binary else Ensemble(k, init.tolist())
    lr = float(est.learning_rate)
    for stage in est.estimators_:
        for j, tree in enumerate(stage):
            left, right, feat, thr, miss = _sk_tree(tree, nan_follows_flag=False)
            values = np.asarray(tree.tree_.value[:, 0, 0], dtype=np.float64)
            dim = 1 if binary else j
            # predict_stages adds ``scale * value`` per stage: the same double product, computed here
            leaves = {int(n): [(dim, float(lr * values[n]))] for n in np.where(left == -1)[0]}
            ens.add_tree(left, right, feat, thr, miss, leaves)
    return ens.emit(b, xa, out or b.var("gb_raw", ARRAY, ens.params.numPredictionDimensions))


def convert_gb_regressor(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    if est.loss not in ("squared_error", "absolute_error", "huber", "quantile"):
        raise CoreMLUnsupported(f"GradientBoostingRegressor(loss={est.loss!r}) is not supported")
    # one prediction dimension: the ensemble writes the Double output itself
    return {"value": _gb_sums(b, est, x, binary=False, out=Var(ctx.outputs["value"], DOUBLE))}


def convert_gb_classifier(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    if est.loss != "log_loss":
        raise CoreMLUnsupported(f"GradientBoostingClassifier(loss={est.loss!r}) is not supported; use log_loss")
    binary = est.estimators_.shape[1] == 1
    raw = _gb_sums(b, est, x, binary=binary)
    proba = softmax(b, raw, ctx.outputs["probabilities"])
    if binary:  # sklearn: classes_[1] where raw >= 0
        label = threshold_label(b, raw, 1, ">=", 0.0, est.classes_, ctx.outputs["label"])
    else:  # sklearn: argmax of the raw predictions
        label = argmax_label(b, raw, est.classes_, ctx.outputs["label"])
    return {"label": label, "probabilities": proba}


def _hgb_sums(b: Builder, est: Any, x: Any, binary: bool, out: Var | None = None) -> Var:
    xa = _input(b, x, est.n_features_in_)
    k = est.n_trees_per_iteration_
    base = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    ens = Ensemble(2, [0.0, base[0]]) if binary else Ensemble(k, base.tolist())
    # HistGradientBoosting compares float64 X with float64 thresholds: no float32 adjustment
    for t in hgb_trees(est):
        dim = 1 if binary else t.target
        ens.add_tree(t.left, t.right, t.feature, t.threshold, t.missing_left,
                     {n: [(dim, v)] for n, v in t.leaves.items()})
    return ens.emit(b, xa, out or b.var("hgb_raw", ARRAY, ens.params.numPredictionDimensions))


def convert_hgb_regressor(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    if est.loss not in ("squared_error", "absolute_error", "quantile"):
        raise CoreMLUnsupported(f"HistGradientBoostingRegressor(loss={est.loss!r}) needs exp() of the raw "
                                "score, which no classic Core ML model states; use squared_error")
    return {"value": _hgb_sums(b, est, x, binary=False, out=Var(ctx.outputs["value"], DOUBLE))}


def convert_hgb_classifier(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    binary = est.n_trees_per_iteration_ == 1
    raw = _hgb_sums(b, est, x, binary=binary)
    proba = softmax(b, raw, ctx.outputs["probabilities"])
    if binary:  # sklearn: classes_[1] where raw > 0 ("> 0" so that a 0.5/0.5 tie gives the first class)
        label = threshold_label(b, raw, 1, ">", 0.0, est.classes_, ctx.outputs["label"])
    else:
        label = argmax_label(b, raw, est.classes_, ctx.outputs["label"])
    return {"label": label, "probabilities": proba}
