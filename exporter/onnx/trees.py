"""Converters for tree ensembles, written straight to ai.onnx.ml ``TreeEnsembleRegressor``.

Why not skl2onnx's tree converters: they compare in float32 against float32
thresholds, drop the missing-value routing and let ties fall where they may
(DESIGN.md "Parity"). Here every ensemble, classifier or regressor, becomes
regressors with double thresholds (``nodes_values_as_tensor``) and double leaf
weights, summed by onnxruntime in double; random forests, extra trees and single
trees (sklearn casts their input to float32) take the faster, exact leaf-number
layout instead (``_leaf_sum``), unless they are classifiers with pure leaves small
enough for one node, whose whole-number sums are exact in any order (``_leaf_layout``).
Every node is turned so that its busier child is the one onnxruntime stores next to
it (``Ensemble._node_attributes``):

* sklearn's own trees compare ``float32(x) <= threshold`` in double, so the
  input is cast to float32 (and back, for double thresholds); HistGradientBoosting
  compares in double, so it is not.
* NaN follows ``missing_go_to_left`` (``nodes_missing_value_tracks_true``).
* classifier leaves hold sklearn's normalised class proportions; labels are the
  first maximum of the probabilities, as ``np.argmax``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._sklearn_trees import hgb_trees
from ._builder import DOUBLE, FLOAT, INT32, INT64, Graph, Var
from ._context import Context

__all__ = [
    "Ensemble",
    "convert_forest_classifier",
    "convert_forest_regressor",
    "convert_tree_classifier",
    "convert_tree_regressor",
    "convert_gb_classifier",
    "convert_gb_regressor",
    "convert_hgb_classifier",
    "convert_hgb_regressor",
    "convert_isolation_forest",
    "tree_thresholds",
]


@dataclass
class Ensemble:
    """Flattened nodes of many trees, in the attribute layout of TreeEnsembleRegressor."""

    n_targets: int
    treeids: list[int] = field(default_factory=list)
    nodeids: list[int] = field(default_factory=list)
    featureids: list[int] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    true_ids: list[int] = field(default_factory=list)
    false_ids: list[int] = field(default_factory=list)
    missing_true: list[int] = field(default_factory=list)
    t_treeids: list[int] = field(default_factory=list)
    t_nodeids: list[int] = field(default_factory=list)
    t_ids: list[int] = field(default_factory=list)
    t_weights: list[float] = field(default_factory=list)
    flipped: list[bool] = field(default_factory=list)
    n_trees: int = 0

    def add_tree(self, left: np.ndarray, right: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
                 missing_left: np.ndarray, leaf_weights: dict[int, list[tuple[int, float]]],
                 hot: np.ndarray | None = None) -> None:
        """``leaf_weights[node] = [(target, weight), ...]`` for every leaf; ``hot[node]``, when given, the
        training rows that reached each node (``tree_.n_node_samples``): see ``_node_attributes``."""
        tid = self.n_trees
        self.n_trees += 1
        for node in range(len(left)):
            self.treeids.append(tid)
            self.nodeids.append(node)
            self.flipped.append(hot is not None and left[node] != -1 and hot[left[node]] > hot[right[node]])
            if left[node] == -1:
                self.featureids.append(0)
                self.modes.append("LEAF")
                self.values.append(0.0)
                self.true_ids.append(0)
                self.false_ids.append(0)
                self.missing_true.append(0)
                for target, w in leaf_weights[node]:
                    self.t_treeids.append(tid)
                    self.t_nodeids.append(node)
                    self.t_ids.append(target)
                    self.t_weights.append(float(w))
            else:
                self.featureids.append(int(feature[node]))
                self.modes.append("BRANCH_LEQ")
                self.values.append(float(threshold[node]))
                self.true_ids.append(int(left[node]))
                self.false_ids.append(int(right[node]))
                self.missing_true.append(int(bool(missing_left[node])))

    def _node_attributes(self, width: int, floats: bool, hint: str) -> dict[str, Any]:
        """The node attributes, with every flipped node turned around.

        onnxruntime stores a node's false branch right after it and reaches the true branch through a
        pointer; a walk down the false branches reads memory in order. A flipped node is one whose left
        (``x <= t``) child took more training rows: it tests ``-x <= t'`` on the negated copy of its feature
        (column ``width + f`` of ``[x, -x]``, ``signed_input``), where ``t'`` is the largest value below
        ``-t`` in the thresholds' type, so its true branch is sklearn's right child and its false branch
        the busier left one. ``x > t`` is ``-x < -t`` is ``-x <= t'`` exactly, for every float including
        ±0 and ±inf; NaN fails every comparison, so its track is the opposite one. (The forest of
        bench/bench_runtime.py: the tree kernel took 101 ms for 8,192 rows against 128 ms unflipped.)
        """
        flip = np.asarray(self.flipped, dtype=bool)
        values = _down_to_float32(self.values) if floats else np.asarray(self.values, dtype=np.float64)
        values[flip] = np.nextafter(-values[flip], values.dtype.type(-np.inf))
        feature = np.asarray(self.featureids, dtype=np.int64) + np.where(flip, width, 0)
        true_ids, false_ids = np.asarray(self.true_ids), np.asarray(self.false_ids)
        missing = np.asarray(self.missing_true)
        return dict(
            nodes_featureids=feature.tolist(),
            nodes_truenodeids=np.where(flip, false_ids, true_ids).tolist(),
            nodes_falsenodeids=np.where(flip, true_ids, false_ids).tolist(),
            nodes_missing_value_tracks_true=np.where(flip, 1 - missing, missing).tolist(),
            **({"nodes_values": values.tolist()} if floats else
               {"nodes_values_as_tensor": _tensor(values.tolist(), f"{hint}_thresholds")}),
        )

    def _input(self, g: Graph, x: Var, signed: Var | None) -> Var:
        if not any(self.flipped):
            return x
        return signed if signed is not None else signed_input(g, x)

    def emit(self, g: Graph, x: Var, hint: str) -> Var:
        """[N, n_targets] double: the sum over trees of the leaf weights."""
        y = g.op1(
            "TreeEnsembleRegressor", [self._input(g, x, None).name], hint, domain="ai.onnx.ml",
            n_targets=self.n_targets, aggregate_function="SUM", post_transform="NONE",
            nodes_treeids=self.treeids, nodes_nodeids=self.nodeids, nodes_modes=self.modes,
            **self._node_attributes(x.width, False, hint),
            target_treeids=self.t_treeids, target_nodeids=self.t_nodeids, target_ids=self.t_ids,
            target_weights_as_tensor=_tensor(self.t_weights, f"{hint}_weights"),
        )
        # onnxruntime sums in double but hands out float32
        g.note("tree ensembles: onnxruntime sums the leaves in float64 but returns float32, so sums compare "
               "within 1e-5 absolute up to 1 and 1e-5 relative above (float32 keeps 6e-8 relative)")
        return g.cast(Var(y, FLOAT, self.n_targets), DOUBLE, f"{hint}_double")

    def emit_leaf_numbers(self, g: Graph, x: Var, hint: str, signed: Var | None = None) -> Var:
        """[N, n_trees] float: the number of the leaf each row reaches in each tree (``_leaf_sum``).

        Each tree's leaves weigh their own number into the tree's own target, so every sum onnxruntime forms
        is one integer below 2**24: exact in float32. A float32 ``x`` compares with float32 thresholds, each
        the largest float32 not above sklearn's double threshold: ``x <= t32`` holds exactly where
        ``x <= t`` does, and float32 nodes are smaller and faster than double ones. ``signed``: the
        ``[x, -x]`` matrix when the caller shares one among several ensembles.
        """
        floats = x.dtype == FLOAT
        weights = self.t_weights if floats else _tensor(self.t_weights, f"{hint}_leaves")
        y = g.op1(
            "TreeEnsembleRegressor", [self._input(g, x, signed).name], hint, domain="ai.onnx.ml",
            n_targets=self.n_targets, aggregate_function="SUM", post_transform="NONE",
            nodes_treeids=self.treeids, nodes_nodeids=self.nodeids, nodes_modes=self.modes,
            **self._node_attributes(x.width, floats, hint),
            target_treeids=self.t_treeids, target_nodeids=self.t_nodeids, target_ids=self.t_ids,
            **({"target_weights": weights} if floats else {"target_weights_as_tensor": weights}),
        )
        return Var(y, FLOAT, self.n_targets)


def signed_input(g: Graph, x: Var) -> Var:
    """``[x, -x]``: the columns flipped nodes test (``Ensemble._node_attributes``); negation is exact."""
    neg = g.op1("Neg", [x.name], "tree_in_neg")
    return Var(g.op1("Concat", [x.name, neg], "tree_in_signed", axis=1), x.dtype, 2 * x.width)


def _down_to_float32(values: list[float]) -> np.ndarray:
    """The largest float32 not above each double (sklearn compares float32(x) <= double threshold)."""
    t = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        f = t.astype(np.float32)
    # arithmetic in float64 on purpose (DESIGN.md "Core ML": numpy 2 compares float32 with a float in float32)
    above = f.astype(np.float64) > t
    f[above] = np.nextafter(f[above], np.float32(-np.inf))
    return f


def _tensor(values: list[float], name: str) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, dtype=np.float64), name)


def _sk_tree_arrays(tree: Any) -> tuple[np.ndarray, ...]:
    t = tree.tree_
    missing = getattr(t, "missing_go_to_left", None)
    if missing is None:
        missing = np.zeros(t.node_count, dtype=np.uint8)
    return t.children_left, t.children_right, t.feature, t.threshold, np.asarray(missing)


def _hot(tree: Any) -> np.ndarray:
    """The training rows that reached each node: which child a walk most often takes (``Ensemble.add_tree``)."""
    return np.asarray(tree.tree_.n_node_samples)


def _check_single_output(est: Any) -> None:
    if getattr(est, "n_outputs_", 1) != 1:
        raise ValueError("multi-output trees are not supported")


def _float32_input(g: Graph, x: Var | list[Var]) -> Var:
    """sklearn's own trees see float32(x): the float32 matrix (``_double_of_float32`` for double thresholds)."""
    m = g.matrix(x, "tree_in")
    return g.cast(g.cast(m, DOUBLE, "tree_in_d"), FLOAT, "tree_in_f32")


def _double_of_float32(g: Graph, x: Var | list[Var]) -> Var:
    """float32(x) in double, for the ensembles that keep double thresholds and sums."""
    return g.cast(_float32_input(g, x), DOUBLE, "tree_in_f64")


# The leaf-number layout puts at most this many nodes in one TreeEnsembleRegressor. onnxruntime walks all the
# trees of a node for one row before the next row: with 100 trees of 2,600 nodes in one node every row missed
# the cache (bench/bench_runtime.py forest: the tree kernel took 5.2 s of 5.6 s for 100,000 rows on one
# thread); in groups of 16,384 nodes (~400 KB, a core's L2 is 2 MiB here) the trees took 0.3 s of 3.1 s.
# Smaller groups cost one-row latency (a node each: 100 groups of one tree took 93 µs a row against 47 µs for
# groups of 16,384 nodes and 35 µs for one ensemble).
GROUP_NODES = 16_384
# leaf numbers are float32 sums of one integer: exact below 2**24
_MAX_LEAVES = 2**24


def _whole_leaves(trees: list[Any], n_classes: int) -> bool:
    """Whether every class fraction of every leaf is 0 or 1 (pure leaves: sklearn's forests by default).

    Then every sum of leaves is a whole number below 2**24, which float32 holds exactly and which no order of
    addition changes: the one-node layout's float32 output is sklearn's sum bit for bit, on one thread or
    many (onnxruntime splits large batches across threads and adds the parts in another order).
    """
    if sum(int(t.tree_.node_count) for t in trees) * n_classes >= _MAX_LEAVES:
        return False
    for t in trees:
        v = np.asarray(t.tree_.value[t.tree_.children_left == -1, 0, :n_classes], dtype=np.float64)
        if not np.all((v == 0.0) | (v == 1.0)):
            return False
    return True


def _leaf_layout(trees: list[Any], exact: bool = False, n_classes: int = 0) -> bool:
    """Whether ``_leaf_sum`` is the layout for these trees: always, unless the one-node layout is exact too
    (a classifier with pure leaves in no more than one group of nodes, and not a part of a meta-estimator,
    ``exact``, whose sums other parts are compared with) or there are 2**24 leaves or more."""
    nodes = sum(int(t.tree_.node_count) for t in trees)
    if nodes >= _MAX_LEAVES:
        return False
    return exact or nodes > GROUP_NODES or not (n_classes and _whole_leaves(trees, n_classes))


def _leaf_sum(g: Graph, trees: list[Any], leaf_values: Callable[[Any, np.ndarray], np.ndarray], width: int,
              x: Var, hint: str) -> Var:
    """[N, width] double: the sum over ``trees`` of the values of the leaves each row reaches, bit for bit
    sklearn's: the leaves are found by number (``Ensemble.emit_leaf_numbers``), their values gathered from a
    double table, and the trees added one after the other in double by CumSum, in sklearn's order.

    ``leaf_values(tree, leaves)`` is the ``[len(leaves), width]`` table of one tree's leaves (node ids).
    The leaf numbers are turned tree-major (``[trees, N]``) before the gather, so each tree's slice of the
    table stays in cache while all rows read it, and CumSum adds whole ``[N, width]`` planes (the forest of
    bench/bench_runtime.py, 8,192 rows: gather 14 ms against 30 ms row-major); int32 indices, half the bytes.
    """
    groups: list[Ensemble] = []
    tables: list[np.ndarray] = []
    offsets: list[int] = []
    for tree in trees:
        left, right, feat, thr, miss = _sk_tree_arrays(tree)
        leaves = np.flatnonzero(left == -1)
        if not groups or (groups[-1].n_trees and len(groups[-1].nodeids) + len(left) > GROUP_NODES):
            groups.append(Ensemble(n_targets=0))
        ens = groups[-1]
        local = ens.n_trees
        first = offsets[-1] + len(tables[-1]) if tables else 0
        # a leaf's number in the whole forest, so the numbers index the table as they come out
        ens.add_tree(left, right, feat, thr, miss,
                     {int(n): [(local, float(first + i))] for i, n in enumerate(leaves)}, _hot(tree))
        ens.n_targets = ens.n_trees
        offsets.append(first)
        tables.append(np.asarray(leaf_values(tree, leaves), dtype=np.float64).reshape(len(leaves), width))
    signed = signed_input(g, x) if any(any(e.flipped) for e in groups) else None
    numbers = [ens.emit_leaf_numbers(g, x, f"{hint}_leaves", signed) for ens in groups]
    found = g.op1("Concat", [v.name for v in numbers], f"{hint}_leaf_no", axis=1) if len(numbers) > 1 \
        else numbers[0].name
    by_tree = g.op1("Transpose", [found], f"{hint}_leaf_no_t", perm=[1, 0])
    index = g.op1("Cast", [by_tree], f"{hint}_leaf_index", to=INT32)
    picked = g.op1("Gather", [g.const(np.concatenate(tables), f"{hint}_leaf_values"), index], f"{hint}_picked",
                   axis=0)  # [trees, N, width]
    last = g.const(np.asarray(len(trees) - 1, dtype=np.int64), f"{hint}_last")
    if len(trees) > 1:  # CumSum adds tree t to the sum of trees 0..t-1: sklearn's `all_proba += proba`
        picked = g.op1("CumSum", [picked, g.const(np.asarray(0, dtype=np.int64), "axis0_scalar")], f"{hint}_cumsum")
    g.note("forests and single trees: leaves found with float32 thresholds (exact for float32 input) and their "
           "values summed in double in sklearn's order: the same bits as sklearn's predict_proba/predict")
    return Var(g.op1("Gather", [picked, last], f"{hint}_total", axis=0), DOUBLE, width)


def _proportions(value: np.ndarray, n_classes: int) -> np.ndarray:
    # scikit-learn >= 1.4 stores the class fractions in tree_.value and predict_proba returns them as they are:
    # dividing again by their sum (1 +- an ulp) moved 1 probability in 6 by an ulp. Counts (older files) are
    # divided by their row sum (0 -> 1), as predict_proba did then.
    p = np.asarray(value, dtype=np.float64)[:n_classes].copy()
    s = p.sum()
    if abs(s - 1.0) <= 1e-12:
        return p
    return p / (s if s != 0 else 1.0)


def _classifier_ensemble(trees: list[Any], n_classes: int) -> Ensemble:
    ens = Ensemble(n_targets=n_classes)
    for tree in trees:
        _check_single_output(tree)
        left, right, feat, thr, miss = _sk_tree_arrays(tree)
        values = tree.tree_.value[:, 0, :]
        leaves = {int(n): [(k, float(w)) for k, w in enumerate(_proportions(values[n], n_classes))]
                  for n in np.where(left == -1)[0]}
        ens.add_tree(left, right, feat, thr, miss, leaves, _hot(tree))
    return ens


def _regressor_ensemble(trees: list[Any], scale: float = 1.0, target: int = 0, ens: Ensemble | None = None
                        ) -> Ensemble:
    # a multi-output regression tree (n_outputs_ > 1) is one ensemble with a target per output
    ens = ens or Ensemble(n_targets=int(trees[0].tree_.value.shape[1]) if trees else 1)
    for tree in trees:
        left, right, feat, thr, miss = _sk_tree_arrays(tree)
        values = tree.tree_.value[:, :, 0]
        if values.shape[1] != 1 and values.shape[1] != ens.n_targets:
            raise ValueError("multi-output trees are supported in forests and single trees, not boosted")
        # GradientBoosting adds scale * value per stage: the same product, computed once here
        leaves = {int(n): [(target + o, float(scale * values[n, o]) if scale != 1.0 else float(values[n, o]))
                           for o in range(values.shape[1])]
                  for n in np.where(left == -1)[0]}
        ens.add_tree(left, right, feat, thr, miss, leaves, _hot(tree))
    return ens


def _labels_from_proba(g: Graph, proba: str) -> Var:
    return Var(g.op1("ArgMax", [proba], "label_index", axis=1, keepdims=0, select_last_index=0), INT64, 1)


def convert_tree_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    return _forest_classifier(g, [est], len(est.classes_), x, "dt", ctx.exact_trees)


def convert_forest_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    return _forest_classifier(g, list(est.estimators_), len(est.classes_), x, "rf", ctx.exact_trees)


def _forest_classifier(g: Graph, trees: list[Any], n_classes: int, x: Var | list[Var], hint: str,
                       exact: bool = False) -> dict[str, Var]:
    for tree in trees:
        _check_single_output(tree)

    def proportions(tree: Any, leaves: np.ndarray) -> np.ndarray:
        values = tree.tree_.value[:, 0, :]
        return np.stack([_proportions(values[n], n_classes) for n in leaves])

    if _leaf_layout(trees, exact, n_classes):
        total = _leaf_sum(g, trees, proportions, n_classes, _float32_input(g, x), f"{hint}_sum")
    else:
        total = _classifier_ensemble(trees, n_classes).emit(g, _double_of_float32(g, x), f"{hint}_sum")
    proba = total.name
    if len(trees) > 1:  # sklearn: sum of the trees' probabilities, then / n_estimators
        proba = g.op1("Div", [proba, g.const(np.float64(len(trees)), f"{hint}_n")], "probabilities")
    return {"probabilities": Var(proba, DOUBLE, n_classes), "label_index": _labels_from_proba(g, proba)}


def _forest_values(g: Graph, trees: list[Any], x: Var | list[Var], hint: str, exact: bool = False) -> Var:
    """Sum over regression trees of their leaf values (one column per output), in sklearn's order."""
    if not _leaf_layout(trees, exact):
        return _regressor_ensemble(trees).emit(g, _double_of_float32(g, x), hint)
    width = int(trees[0].tree_.value.shape[1])
    return _leaf_sum(g, trees, lambda tree, leaves: tree.tree_.value[leaves, :, 0], width, _float32_input(g, x),
                     hint)


def convert_tree_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    return {"value": _forest_values(g, [est], x, "dt_value", ctx.exact_trees)}


def convert_forest_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    total = _forest_values(g, list(est.estimators_), x, "rf_sum", ctx.exact_trees)
    mean = g.op1("Div", [total.name, g.const(np.float64(len(est.estimators_)), "rf_n")], "rf_value")
    return {"value": Var(mean, DOUBLE, total.width)}


def _gb_raw(g: Graph, est: Any, x: Var | list[Var], sample: np.ndarray | None) -> Var:
    if est.init_ != "zero" and type(est.init_).__name__ not in ("DummyClassifier", "DummyRegressor"):
        raise ValueError(f"GradientBoosting with init={type(est.init_).__name__} is not supported")
    k = est.estimators_.shape[1]
    ens = Ensemble(n_targets=k)
    for stage in est.estimators_:
        for j, tree in enumerate(stage):
            _regressor_ensemble([tree], scale=float(est.learning_rate), target=j, ens=ens)
    total = ens.emit(g, _double_of_float32(g, x), "gb_sum")
    n_features = est.n_features_in_
    init = est._raw_predict_init(np.zeros((1, n_features), dtype=np.float32))[0]
    raw = g.op1("Add", [total.name, g.const(np.asarray(init, dtype=np.float64).reshape(1, -1), "gb_init")], "gb_raw")
    return Var(raw, DOUBLE, k)


def convert_gb_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    if est.loss not in ("squared_error", "absolute_error", "huber", "quantile"):
        raise ValueError(f"GradientBoostingRegressor(loss={est.loss!r}) is not supported")
    return {"value": _gb_raw(g, est, x, None)}


def _binary_or_softmax(g: Graph, raw: Var, hint: str) -> str:
    if raw.width == 1:
        p1 = g.op1("Sigmoid", [raw.name], f"{hint}_p1")
        p0 = g.op1("Sub", [g.const(np.array([[1.0]]), "one"), p1], f"{hint}_p0")
        return g.op1("Concat", [p0, p1], "probabilities", axis=1)
    return g.op1("Softmax", [raw.name], "probabilities", axis=1)


def convert_gb_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    if est.loss != "log_loss":
        raise ValueError(f"GradientBoostingClassifier(loss={est.loss!r}) is not supported; use log_loss")
    raw = _gb_raw(g, est, x, None)
    proba = _binary_or_softmax(g, raw, "gb")
    if raw.width == 1:  # sklearn: class 1 where raw >= 0
        pos = g.op1("GreaterOrEqual", [raw.name, g.const(np.array([[0.0]]), "zero")], "gb_pos")
        label = g.op1("Squeeze", [g.op1("Cast", [pos], "gb_label", to=INT64),
                                  g.const(np.array([1], dtype=np.int64), "axis1")], "label_index")
        return {"probabilities": Var(proba, DOUBLE, 2), "label_index": Var(label, INT64, 1)}
    label = g.op1("ArgMax", [raw.name], "label_index", axis=1, keepdims=0, select_last_index=0)
    return {"probabilities": Var(proba, DOUBLE, raw.width), "label_index": Var(label, INT64, 1)}


def _hgb_raw(g: Graph, est: Any, x: Var | list[Var]) -> Var:
    k = est.n_trees_per_iteration_
    ens = Ensemble(n_targets=k)
    for t in hgb_trees(est):
        leaves = {n: [(t.target, v)] for n, v in t.leaves.items()}
        ens.add_tree(t.left, t.right, t.feature, t.threshold, t.missing_left, leaves)
    total = ens.emit(g, g.cast(g.matrix(x, "hgb_in"), DOUBLE), "hgb_sum")
    base = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(1, -1)
    return Var(g.op1("Add", [total.name, g.const(base, "hgb_base")], "hgb_raw"), DOUBLE, k)


def convert_hgb_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    raw = _hgb_raw(g, est, x)
    if est.loss in ("poisson", "gamma"):
        return {"value": Var(g.op1("Exp", [raw.name], "hgb_value"), DOUBLE, 1)}
    if est.loss not in ("squared_error", "absolute_error", "quantile"):
        raise ValueError(f"HistGradientBoostingRegressor(loss={est.loss!r}) is not supported")
    return {"value": raw}


def convert_hgb_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    raw = _hgb_raw(g, est, x)
    proba = _binary_or_softmax(g, raw, "hgb")
    n = 2 if raw.width == 1 else raw.width
    # sklearn: argmax of predict_proba
    return {"probabilities": Var(proba, DOUBLE, n), "label_index": _labels_from_proba(g, proba)}


def convert_isolation_forest(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    from sklearn.ensemble._iforest import _average_path_length

    xin = _double_of_float32(g, x)
    n_features = xin.width
    ens = Ensemble(n_targets=1)
    subsample = est._max_features != n_features
    for i, (tree, feats) in enumerate(zip(est.estimators_, est.estimators_features_, strict=True)):
        left, right, feat, thr, miss = _sk_tree_arrays(tree)
        if subsample:  # the tree saw X[:, feats]; map its feature ids back to the full input
            feat = np.where(left == -1, 0, np.asarray(feats)[np.maximum(feat, 0)])
        depth = np.asarray(est._decision_path_lengths[i], dtype=np.float64)
        avg = np.asarray(est._average_path_length_per_tree[i], dtype=np.float64)
        leaves = {int(n): [(0, float(depth[n] + avg[n] - 1.0))] for n in np.where(left == -1)[0]}
        ens.add_tree(left, right, feat, thr, miss, leaves, _hot(tree))
    depths = ens.emit(g, xin, "if_depths")
    denom = float(len(est.estimators_) * _average_path_length([est._max_samples])[0])
    if denom == 0:
        raise ValueError("IsolationForest fitted on a single sample cannot be exported")
    ratio = g.op1("Div", [depths.name, g.const(np.float64(denom), "if_denom")], "if_ratio")
    score = g.op1("Pow", [g.const(np.float64(2.0), "two"), g.op1("Neg", [ratio], "if_neg")], "if_pow")
    decision = g.op1("Sub", [g.op1("Neg", [score], "if_score_samples"),
                             g.const(np.float64(est.offset_), "if_offset")], "scores")
    outlier = g.op1("Less", [decision, g.const(np.array([[0.0]]), "zero")], "if_outlier")
    label = g.op1("Where", [outlier, g.const(np.array([[-1]], dtype=np.int64), "minus_one"),
                            g.const(np.array([[1]], dtype=np.int64), "plus_one")], "if_label")
    label = g.op1("Squeeze", [label, g.const(np.array([1], dtype=np.int64), "axis1")], "label")
    return {"score": Var(decision, DOUBLE, 1), "label": Var(label, INT64, 1)}


def tree_thresholds(est: Any) -> list[tuple[int, float]]:
    """(feature index, threshold) of every split of a supported tree model, for adversarial golden rows."""
    out: set[tuple[int, float]] = set()
    trees: list[Any] = []
    if hasattr(est, "tree_"):
        trees = [est]
    elif hasattr(est, "_predictors"):
        for t in hgb_trees(est):
            out.update((int(t.feature[n]), float(t.threshold[n])) for n in np.where(t.left != -1)[0])
        return sorted(out)
    elif hasattr(est, "estimators_"):
        trees = list(np.ravel(np.asarray(est.estimators_, dtype=object)))
        feats = getattr(est, "estimators_features_", None)
        if feats is not None and type(est).__name__ == "IsolationForest" and est._max_features != est.n_features_in_:
            for tree, fs in zip(trees, feats, strict=True):
                t = tree.tree_
                for n in np.where(t.children_left != -1)[0]:
                    out.add((int(fs[t.feature[n]]), float(t.threshold[n])))
            return sorted(out)
    for tree in trees:
        t = tree.tree_
        for n in np.where(t.children_left != -1)[0]:
            out.add((int(t.feature[n]), float(t.threshold[n])))
    return sorted(out)
