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

Scalers in front of a tree are folded into its thresholds: a column ``z = s(x)`` of
a fitted StandardScaler / MinMaxScaler is increasing in ``x``, so ``float32(s(x)) <= t``
holds exactly for ``x <= X``, the largest double found by bisection over the doubles
on sklearn's own ``s.transform`` (``_Fold``). The tree then branches on ``x`` with
``X``; Core ML's Scaler (``scale * (x + shift)``) is an ulp off ``(x - mean) / scale``
and would flip rows on a threshold.

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

from .._sklearn_trees import float32_split, float32_splits, hgb_trees
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


def _sk_tree(tree: Any, *, nan_follows_flag: bool = True, fold: _Fold | None = None) -> tuple[np.ndarray, ...]:
    """children, features, Core ML thresholds and NaN routing of a fitted sklearn tree."""
    t = tree.tree_
    left, right = t.children_left, t.children_right

    branch = left != -1
    thresholds = np.zeros(len(left))
    thresholds[branch] = float32_splits(t.threshold[branch])
    if fold is not None:
        for i in np.where(branch)[0]:
            folded = fold.threshold(int(t.feature[i]), float(t.threshold[i]))
            if folded is not None:
                thresholds[i] = folded
    missing = getattr(t, "missing_go_to_left", None)
    if missing is None or not nan_follows_flag:
        missing = np.zeros(t.node_count, dtype=np.uint8)
    return left, right, t.feature, np.asarray(thresholds), np.asarray(missing)


_SIGN = np.int64(-0x8000000000000000)


def _key(x: np.ndarray) -> np.ndarray:
    i = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(i < 0, -(i & ~_SIGN), i)


def _unkey(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, dtype=np.int64)
    return np.where(k < 0, (-k) | _SIGN, k).view(np.float64)


class _Fold:
    """Columns of the tree input that are a fitted scaler's output, branched on the scaler's input instead."""

    def __init__(self, cols: dict[int, tuple[Any, int]], float32: bool) -> None:
        self.cols = cols  # tree column -> (fitted scaler, its column)
        self.float32 = float32
        self._cache: dict[tuple[int, float], float] = {}

    def _transform(self, step: Any, j: int, u: np.ndarray) -> np.ndarray:
        m = np.zeros((len(u), int(step.n_features_in_)), dtype=np.float64)
        m[:, j] = u
        names = getattr(step, "feature_names_in_", None)
        if names is not None:
            import pandas as pd

            m = pd.DataFrame(m, columns=list(names))
        with np.errstate(all="ignore"):
            z = np.asarray(step.transform(m), dtype=np.float64)[:, j]
            return z.astype(np.float32).astype(np.float64) if self.float32 else z

    def prepare(self, feature: np.ndarray, threshold: np.ndarray) -> None:
        """Bisect every (column, threshold) at once: the largest double x with test(s(x)) <= t."""
        for c, (step, j) in self.cols.items():
            t = np.unique(threshold[(feature == c)])
            t = np.array([v for v in t if (c, float(v)) not in self._cache and np.isfinite(v)])
            if not len(t):
                continue
            lo = np.full(len(t), _key(np.array([-np.finfo(np.float64).max]))[0])
            hi = np.full(len(t), _key(np.array([np.finfo(np.float64).max]))[0])
            # invariant: lo is left of the boundary or the lowest double, hi right of it or the highest
            for _ in range(70):
                open_ = hi - 1 > lo  # (hi - lo would overflow int64)
                if not np.any(open_):
                    break
                mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without overflow
                left = self._transform(step, j, _unkey(mid)) <= t
                lo = np.where(open_ & left, mid, lo)
                hi = np.where(open_ & ~left, mid, hi)
            ok_lo = self._transform(step, j, _unkey(lo)) <= t
            x = np.where(ok_lo, _unkey(lo), -np.inf)  # nothing goes left: only -inf would
            for v, xv in zip(t, x, strict=True):
                self._cache[(c, float(v))] = float(xv)

    def threshold(self, feature: int, t: float) -> float | None:
        if feature not in self.cols:
            return None
        if not np.isfinite(t):
            return float(t)
        return self._cache[(feature, float(t))]


def _pieces(b: Builder, var: Var, ctx: Context) -> list[tuple[Var, Any, int]]:
    """The columns of ``var`` as (source feature, fitted scaler or None, scaler column), through vectorizers."""
    if var.name in ctx.folds:
        parts, step = ctx.folds[var.name]
        parts = [parts] if isinstance(parts, Var) else list(parts)
        if all(p.width == 1 and p.kind == DOUBLE for p in parts) and len(parts) == int(step.n_features_in_):
            return [(p, step, j) for j, p in enumerate(parts)]
        return [(var, None, 0)]
    for m in b.models:
        if m.WhichOneof("Type") == "featureVectorizer" and m.description.output[0].name == var.name:
            kinds = {d.name: d.type.WhichOneof("Type") for d in m.description.input}
            out: list[tuple[Var, Any, int]] = []
            for col in m.featureVectorizer.inputList:
                dims = int(col.inputDimensions)
                kind = DOUBLE if kinds.get(col.inputColumn) == "doubleType" and dims == 1 else ARRAY
                out += _pieces(b, Var(col.inputColumn, kind, dims, var.nan), ctx)
            return out
    return [(var, None, 0)]


def _input(b: Builder, x: Any, n_features: int, ctx: Context | None = None, float32: bool = True,
           trees: list[Any] | None = None) -> tuple[Var, _Fold | None]:
    xa = b.vectorize(x)
    if xa.width != n_features:
        raise ValueError(f"the estimator takes {n_features} columns, the steps before it give {xa.width}")
    if ctx is None or not ctx.folds:
        return xa, None
    pieces = _pieces(b, xa, ctx)
    if not any(step is not None for _, step, _ in pieces):
        return xa, None
    cols: dict[int, tuple[Any, int]] = {}
    srcs: list[Var] = []
    at = 0
    for v, step, j in pieces:
        if step is not None:
            cols[at] = (step, j)
        srcs.append(v)
        at += v.width
    if at != n_features:  # pragma: no cover - a converter bug
        raise ValueError("the traced tree input does not have the estimator's width")
    fold = _Fold(cols, float32)
    if trees is not None:  # every threshold of every tree in one bisection per column
        fold.prepare(np.concatenate([t.tree_.feature[t.tree_.children_left != -1] for t in trees]),
                     np.concatenate([t.tree_.threshold[t.tree_.children_left != -1] for t in trees]))
    return b.vectorize(srcs, "tree_in"), fold


def _forest_classifier(b: Builder, trees: list[Any], classes: Any, x: Any, ctx: Context, n_features: int
                       ) -> dict[str, Var]:
    xa, fold = _input(b, x, n_features, ctx, trees=trees)
    k = len(classes)
    ens = Ensemble(k, [0.0] * k)
    for tree in trees:
        _check_single_output(tree)
        left, right, feat, thr, miss = _sk_tree(tree, fold=fold)
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
    xa, fold = _input(b, x, n_features, ctx, trees=trees)
    ens = Ensemble(1, [0.0])
    for tree in trees:
        _check_single_output(tree)
        left, right, feat, thr, miss = _sk_tree(tree, fold=fold)
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


def _gb_sums(b: Builder, est: Any, x: Any, binary: bool, ctx: Context, out: Var | None = None) -> Var:
    """sklearn's raw predictions: init + sum of learning_rate * leaf value, stage after stage."""
    if est.init_ != "zero" and type(est.init_).__name__ not in ("DummyClassifier", "DummyRegressor"):
        raise CoreMLUnsupported(f"GradientBoosting with init={type(est.init_).__name__} is not supported")
    xa, fold = _input(b, x, est.n_features_in_, ctx, trees=list(np.ravel(est.estimators_)))
    k = est.estimators_.shape[1]
    init = np.asarray(est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0],
                      dtype=np.float64)
    # binary: dimension 0 stays 0 and dimension 1 is the raw score, ready for the softmax head
    ens = Ensemble(2, [0.0, init[0]]) if binary else Ensemble(k, init.tolist())
    lr = float(est.learning_rate)
    for stage in est.estimators_:
        for j, tree in enumerate(stage):
            left, right, feat, thr, miss = _sk_tree(tree, nan_follows_flag=False, fold=fold)
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
    return {"value": _gb_sums(b, est, x, binary=False, ctx=ctx, out=Var(ctx.outputs["value"], DOUBLE))}


def convert_gb_classifier(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    if est.loss != "log_loss":
        raise CoreMLUnsupported(f"GradientBoostingClassifier(loss={est.loss!r}) is not supported; use log_loss")
    binary = est.estimators_.shape[1] == 1
    raw = _gb_sums(b, est, x, binary=binary, ctx=ctx)
    proba = softmax(b, raw, ctx.outputs["probabilities"])
    if binary:  # sklearn: classes_[1] where raw >= 0
        label = threshold_label(b, raw, 1, ">=", 0.0, est.classes_, ctx.outputs["label"])
    else:  # sklearn: argmax of the raw predictions
        label = argmax_label(b, raw, est.classes_, ctx.outputs["label"])
    return {"label": label, "probabilities": proba}


def _hgb_sums(b: Builder, est: Any, x: Any, binary: bool, ctx: Context, out: Var | None = None) -> Var:
    trees = list(hgb_trees(est))
    xa, fold = _input(b, x, est.n_features_in_, ctx, float32=False)
    if fold is not None:
        fold.prepare(np.concatenate([t.feature[t.left != -1] for t in trees]),
                     np.concatenate([t.threshold[t.left != -1] for t in trees]))
    k = est.n_trees_per_iteration_
    base = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    ens = Ensemble(2, [0.0, base[0]]) if binary else Ensemble(k, base.tolist())
    # HistGradientBoosting compares float64 X with float64 thresholds: no float32 adjustment
    for t in trees:
        dim = 1 if binary else t.target
        thr = t.threshold
        if fold is not None:
            thr = np.array([fold.threshold(int(t.feature[i]), float(v)) if t.left[i] != -1 else v
                            for i, v in enumerate(thr)])
            thr = np.where(np.isnan(thr.astype(np.float64)), t.threshold, thr.astype(np.float64))
        ens.add_tree(t.left, t.right, t.feature, thr, t.missing_left,
                     {n: [(dim, v)] for n, v in t.leaves.items()})
    return ens.emit(b, xa, out or b.var("hgb_raw", ARRAY, ens.params.numPredictionDimensions))


def convert_hgb_regressor(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    if est.loss not in ("squared_error", "absolute_error", "quantile"):
        raise CoreMLUnsupported(f"HistGradientBoostingRegressor(loss={est.loss!r}) needs exp() of the raw "
                                "score, which no classic Core ML model states; use squared_error")
    return {"value": _hgb_sums(b, est, x, binary=False, ctx=ctx, out=Var(ctx.outputs["value"], DOUBLE))}


def convert_hgb_classifier(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    binary = est.n_trees_per_iteration_ == 1
    raw = _hgb_sums(b, est, x, binary=binary, ctx=ctx)
    proba = softmax(b, raw, ctx.outputs["probabilities"])
    if binary:  # sklearn: classes_[1] where raw > 0 ("> 0" so that a 0.5/0.5 tie gives the first class)
        label = threshold_label(b, raw, 1, ">", 0.0, est.classes_, ctx.outputs["label"])
    else:
        label = argmax_label(b, raw, est.classes_, ctx.outputs["label"])
    return {"label": label, "probabilities": proba}
