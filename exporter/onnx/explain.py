"""The explanation graph (``explain.onnx``): per-feature contributions computed by onnxruntime itself.

A second model beside ``model.onnx``, not an extra output of it: plain prediction stays the very graph it was
(byte for byte), and an app that wants explanations (the browser included) loads one more file. Same inputs as
``model.onnx``; outputs

* ``contributions`` ``[N, F, C]`` double: F = the schema's input features, C = classes (1 for regression),
* ``bias`` ``[C]`` double: the answer before any feature is known,
* ``output`` ``[N, C]`` double: what is explained, the probabilities (or the value) the model answers,

with ``bias + contributions.sum(axis=1) == output`` (to float64 rounding, by construction below).

How, by family (the estimator sees the transformed matrix Z; ``ctx.origin`` names the input feature of each of
its columns, and a 0/1 group matrix sums one-hot columns back to their feature):

* linear models: ``(z_d - mean_d) * w_dk`` on the margin, the means those of the export sample's Z;
* trees (Saabas path contributions): a tree's answer is its root's value plus, along the path, the change of
  the node value at each split; so every leaf carries a fixed F × C vector and one more
  ``TreeEnsembleRegressor`` with ``n_targets = F × C`` sums them. A node's value is the sample-weighted mean of
  its leaves (for forests that is sklearn's ``tree_.value``; boosting updates only the leaves, so their inner
  ``value`` would not add up).

Margin to probability: a logistic / boosted model adds on the margin m, and the graph maps each row's margin
contributions onto the probability by integrated gradients of the link along the straight path from the bias's
margin to the row's (exact: the gradients integrate to ``p - p_bias``). For one margin (binary: sigmoid; the exp
of a Poisson/gamma model) that is the secant ``(p - p_bias) / (m - m_bias)`` times each contribution, which keeps
their signs and proportions (where the margin hardly moved, ``|m - m_bias| <= 1e-9``, the slope at the row). For
softmax a class's probability moves with every class's margin, and a per-class secant blows up where its own
margin hardly moved (measured: contributions of ±22 to one probability); the softmax Jacobian averaged along the
path (32-point Gauss-Legendre) is bounded by 1/2 and blind to shifts shared by all classes, as softmax is.
Last, what quadrature, float32 tree sums and rounding leave (``output - bias - sum``, ~1e-7) is shared out in
proportion to ``|c|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper

from skedge.runtime._errors import ExportError
from skedge.runtime._schema import Schema

from .._sklearn_trees import hgb_trees
from .._steps import pipeline_steps
from ._builder import DOUBLE, FLOAT, OPSETS, STRING, Graph, Var
from ._context import Context
from ._convert import OUTPUT_NAMES, convert_step

__all__ = ["EXPLAIN_OUTPUTS", "EXPLAINED", "MAX_LEAF_WEIGHTS", "ExplainGraph", "Unexplained", "explain_family",
           "to_explain_onnx"]

EXPLAIN_OUTPUTS = ("contributions", "bias", "output")
_EPS = 1e-9


class Unexplained(Exception):
    """The pipeline's estimator (or its preprocessing) is not one skedge explains; the message says why."""


@dataclass(frozen=True)
class ExplainGraph:
    model: onnx.ModelProto
    family: str  # "linear" | "trees"
    method: str  # what the contributions are, in words (manifest and card)
    link: str  # "identity" | "sigmoid" | "softmax" | "exp"
    n_transformed: int


_TREE_FAMILIES = {
    "DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor",
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
    "GradientBoostingClassifier", "GradientBoostingRegressor",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
}
_LINEAR_FAMILIES = {"LogisticRegression", "LinearRegression", "Ridge", "Lasso", "ElasticNet"}
EXPLAINED = tuple(sorted(_TREE_FAMILIES | _LINEAR_FAMILIES))


def explain_family(final: Any) -> str:
    name = type(final).__name__
    if name in _TREE_FAMILIES:
        return "trees"
    if name in _LINEAR_FAMILIES:
        return "linear"
    raise Unexplained(f"{name} is not explained (explained: decision trees, random forests, extra trees, "
                      "gradient boosting, HistGradientBoosting, logistic and linear regression)")


# -- trees ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tree:
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    weight: np.ndarray  # samples per node (weighted): a node's value is the weighted mean of its leaves
    leaf_value: np.ndarray  # [nodes, K]; rows of inner nodes unused
    scale: float = 1.0


def _levels(t: _Tree) -> list[np.ndarray]:
    """Node ids by depth, root first."""
    levels, frontier = [], np.array([0])
    while frontier.size:
        levels.append(frontier)
        inner = frontier[t.left[frontier] != -1]
        frontier = np.concatenate([t.left[inner], t.right[inner]]).astype(np.int64)
    return levels


def _leaf_vectors(t: _Tree, owner: np.ndarray, n_feat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(root value [K], leaf ids, [leaves, F, K]: each leaf's sum of value changes along its path, by the input
    feature of each split), scaled. A node's value is the weighted mean of its children's (so of its leaves)."""
    v = np.array(t.leaf_value, dtype=np.float64)
    w = np.asarray(t.weight, dtype=np.float64)
    levels = _levels(t)
    for nodes in reversed(levels):  # bottom-up: children are done before their parents
        inner = nodes[t.left[nodes] != -1]
        if inner.size:
            a, b = t.left[inner], t.right[inner]
            total = (w[a] + w[b])[:, None]
            mean = (w[a, None] * v[a] + w[b, None] * v[b]) / np.where(total > 0, total, 1.0)
            v[inner] = np.where(total > 0, mean, (v[a] + v[b]) / 2)
    v *= t.scale
    acc = np.zeros((len(t.left), n_feat, v.shape[1]))
    for nodes in levels:  # top-down: a child starts from its parent's sum and adds its own change
        inner = nodes[t.left[nodes] != -1]
        if not inner.size:
            continue
        feat = owner[t.feature[inner]]
        for child in (t.left[inner], t.right[inner]):
            acc[child] = acc[inner]
            acc[child, feat] += v[child] - v[inner]
    leaves = np.where(t.left == -1)[0]
    return v[0], leaves, acc[leaves]


# Above this many leaf weights (about 14 bytes each in the file) the explanation graph would outweigh the model
# many times over (a 50-tree forest of 375,000 nodes needed 6.2 million: 91 MB): not exported, and said why.
MAX_LEAF_WEIGHTS = 2_000_000


def _sk_trees(est: Any) -> tuple[list[_Tree], np.ndarray, int]:
    """(trees, raw bias offset [K], K) of a sklearn tree model, leaves in the space it adds in."""
    name = type(est).__name__
    if getattr(est, "n_outputs_", 1) != 1:
        raise Unexplained(f"multi-output {name} is not explained")
    if name.startswith("HistGradientBoosting"):
        try:
            raw = list(hgb_trees(est))
        except ValueError as exc:
            raise Unexplained(f"{name}: {exc}") from None
        k = int(est.n_trees_per_iteration_)
        trees = []
        for ht, pred in zip(raw, [p for it in est._predictors for p in it], strict=True):
            lv = np.zeros((len(ht.left), k))
            for n, leaf in ht.leaves.items():
                lv[n, ht.target] = leaf
            trees.append(_Tree(ht.left, ht.right, ht.feature, ht.threshold, ht.missing_left,
                               pred.nodes["count"].astype(np.float64), lv))
        return trees, np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1), k
    if name.startswith("GradientBoosting"):
        if est.init_ != "zero" and type(est.init_).__name__ not in ("DummyClassifier", "DummyRegressor"):
            raise Unexplained(f"{name} with init={type(est.init_).__name__} is not explained")
        k = est.estimators_.shape[1]
        trees = []
        for stage in est.estimators_:
            for j, tree in enumerate(stage):
                lv = np.zeros((tree.tree_.node_count, k))
                lv[:, j] = tree.tree_.value[:, 0, 0]
                trees.append(_sk_tree(tree, lv, float(est.learning_rate)))
        init = est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0]
        return trees, np.asarray(init, dtype=np.float64).reshape(-1), k
    members = [est] if hasattr(est, "tree_") else list(est.estimators_)
    n = len(members)
    if hasattr(est, "classes_"):
        k = len(est.classes_)
        out = []
        for tree in members:
            val = np.asarray(tree.tree_.value[:, 0, :k], dtype=np.float64)
            row_sums = val.sum(axis=1, keepdims=True)
            out.append(_sk_tree(tree, val / np.where(row_sums == 0, 1.0, row_sums), 1.0 / n))
        return out, np.zeros(k), k
    return [_sk_tree(t, np.asarray(t.tree_.value[:, 0, :1], dtype=np.float64), 1.0 / n) for t in members], \
        np.zeros(1), 1


def _sk_tree(tree: Any, leaf_value: np.ndarray, scale: float) -> _Tree:
    t = tree.tree_
    missing = getattr(t, "missing_go_to_left", None)
    missing = np.zeros(t.node_count, dtype=np.uint8) if missing is None else np.asarray(missing)
    return _Tree(t.children_left, t.children_right, t.feature, t.threshold, missing,
                 np.asarray(t.weighted_n_node_samples, dtype=np.float64), leaf_value, scale)


def _tree_contributions(g: Graph, est: Any, z: Var, group: np.ndarray) -> tuple[Var, np.ndarray, int]:
    """[N, F, K] margin (or probability) contributions, raw bias [K], K."""
    trees, offset, k = _sk_trees(est)
    n_feat = group.shape[1]
    owner = group.argmax(axis=1)  # transformed column -> input feature (every column has exactly one)
    bias = offset.copy()
    nodes: dict[str, list[np.ndarray]] = {key: [] for key in ("tree", "node", "feature", "leaf", "value", "true",
                                                               "false", "missing", "t_tree", "t_node", "t_id", "t_w")}
    count = 0
    for tid, t in enumerate(trees):
        root, leaves, vectors = _leaf_vectors(t, owner, n_feat)
        bias = bias + root
        leaf = t.left == -1
        n = len(t.left)
        nodes["tree"].append(np.full(n, tid))
        nodes["node"].append(np.arange(n))
        nodes["feature"].append(np.where(leaf, 0, t.feature))
        nodes["leaf"].append(leaf)
        nodes["value"].append(np.where(leaf, 0.0, t.threshold))
        nodes["true"].append(np.where(leaf, 0, t.left))
        nodes["false"].append(np.where(leaf, 0, t.right))
        nodes["missing"].append(np.where(leaf, 0, np.asarray(t.missing_left).astype(np.int64)))
        flat = vectors.reshape(len(leaves), n_feat * k)
        rows, targets = np.nonzero(flat)
        empty = np.setdiff1d(np.arange(len(leaves)), rows)  # every leaf names a target, even a zero one
        rows, targets = np.concatenate([rows, empty]), np.concatenate([targets, np.zeros(len(empty), np.int64)])
        count += len(rows)
        if count > MAX_LEAF_WEIGHTS:
            raise Unexplained(f"{type(est).__name__}: its explanation graph would hold over {MAX_LEAF_WEIGHTS:,} "
                              f"leaf weights (after {tid + 1} of {len(trees)} trees), tens of MB beside the model; "
                              "fewer or shallower trees (n_estimators, max_depth, min_samples_leaf) are explained")
        nodes["t_tree"].append(np.full(len(rows), tid))
        nodes["t_node"].append(leaves[rows])
        nodes["t_id"].append(targets)
        nodes["t_w"].append(flat[rows, targets])
    cat = {key: np.concatenate(v) for key, v in nodes.items()}
    from onnx import numpy_helper

    # sklearn's own trees compare float32(x) with double thresholds; HistGradientBoosting compares in double
    if not type(est).__name__.startswith("HistGradientBoosting"):
        z = g.cast(g.cast(z, FLOAT, "ex_f32"), DOUBLE, "ex_f64")
    ints = {key: [int(i) for i in cat[key].tolist()] for key in ("tree", "node", "feature", "true", "false",
                                                                 "missing", "t_tree", "t_node", "t_id")}
    flat_out = g.op1(
        "TreeEnsembleRegressor", [z.name], "ex_saabas", domain="ai.onnx.ml",
        n_targets=n_feat * k, aggregate_function="SUM", post_transform="NONE",
        nodes_treeids=ints["tree"], nodes_nodeids=ints["node"], nodes_featureids=ints["feature"],
        nodes_modes=["LEAF" if x else "BRANCH_LEQ" for x in cat["leaf"].tolist()],
        nodes_truenodeids=ints["true"], nodes_falsenodeids=ints["false"],
        nodes_missing_value_tracks_true=ints["missing"],
        nodes_values_as_tensor=numpy_helper.from_array(cat["value"].astype(np.float64), "ex_thresholds"),
        target_treeids=ints["t_tree"], target_nodeids=ints["t_node"], target_ids=ints["t_id"],
        target_weights_as_tensor=numpy_helper.from_array(cat["t_w"].astype(np.float64), "ex_weights"),
    )
    flat_d = g.op1("Cast", [flat_out], "ex_saabas_d", to=DOUBLE)
    shape = g.const(np.array([-1, n_feat, k], dtype=np.int64), "ex_shape")
    return Var(g.op1("Reshape", [flat_d, shape], "ex_raw"), DOUBLE, n_feat), bias, k


def _tree_link(est: Any, k: int) -> str:
    name = type(est).__name__
    if name.startswith(("GradientBoostingClassifier", "HistGradientBoostingClassifier")):
        return "sigmoid" if k == 1 else "softmax"
    if name == "HistGradientBoostingRegressor" and est.loss in ("poisson", "gamma"):
        return "exp"
    return "identity"


# -- linear --------------------------------------------------------------------------------------------------
def _linear_contributions(g: Graph, est: Any, z: Var, group: np.ndarray, mean: np.ndarray
                          ) -> tuple[Var, np.ndarray, int, str]:
    coef = np.asarray(est.coef_, dtype=np.float64)
    coef = coef.reshape(1, -1) if coef.ndim == 1 else coef
    if type(est).__name__ != "LogisticRegression" and coef.shape[0] != 1:
        raise Unexplained("multi-output linear regression is not explained")
    if type(est).__name__ == "LogisticRegression" and len(est.classes_) > 2 and \
            getattr(est, "multi_class", "deprecated") == "ovr":
        raise Unexplained("LogisticRegression(multi_class='ovr') is not explained")
    k = coef.shape[0]
    intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)).reshape(-1)[:k]
    centred = g.op1("Sub", [z.name, g.const(mean.reshape(1, -1), "ex_mean")], "ex_centred")
    col = g.op1("Unsqueeze", [centred, g.const(np.array([2], dtype=np.int64), "ex_ax2")], "ex_col")
    per_column = g.op1("Mul", [col, g.const(coef.T.reshape(1, -1, k).copy(), "ex_coef")], "ex_terms")  # [N, D, K]
    grouped = g.op1("MatMul", [g.const(group.T.astype(np.float64).copy(), "ex_group"), per_column], "ex_raw")
    bias = intercept + mean @ coef.T
    link = "identity"
    if type(est).__name__ == "LogisticRegression":
        link = "sigmoid" if k == 1 else "softmax"
    return Var(grouped, DOUBLE, group.shape[1]), bias, k, link


# -- the common tail: margin -> output, exact sums -----------------------------------------------------------
def _axes(g: Graph, *axes: int) -> str:
    return g.const(np.array(axes, dtype=np.int64), "ex_axes")


def _secant(g: Graph, contrib: str, delta_out: str, deriv: str) -> str:
    """Scale [N, F, K] contributions so that they sum to ``delta_out`` [N, K]: by the secant of the link."""
    dm = g.op1("ReduceSum", [contrib, _axes(g, 1)], "ex_dm", keepdims=0)
    moved = g.op1("Greater", [g.op1("Abs", [dm], "ex_abs_dm"), g.const(np.float64(_EPS), "ex_eps")], "ex_moved")
    safe = g.op1("Where", [moved, dm, g.const(np.float64(1.0), "ex_one")], "ex_safe_dm")
    slope = g.op1("Where", [moved, g.op1("Div", [delta_out, safe], "ex_secant"), deriv], "ex_slope")
    return g.op1("Mul", [contrib, g.op1("Unsqueeze", [slope, _axes(g, 1)], "ex_slope3")], "ex_scaled")


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(32)


def _softmax_path(g: Graph, contrib: str, raw_bias: np.ndarray) -> str:
    """Integrated gradients of softmax on the straight margin path from the bias to the row:
    ``a[f, k] = sum_j c[f, j] * mean_t J[k, j](m_bias + t * dm)``, J = diag(p) - p p^T, the mean over t by
    32-point Gauss-Legendre quadrature. Exact but for the quadrature (the rest is shared out after), never
    amplified (|J| <= 1/2), and blind to a shift shared by all classes (J 1 = 0), as softmax is."""
    k = len(raw_bias)
    t = ((_NODES + 1.0) / 2.0).reshape(1, -1, 1)
    w = (_WEIGHTS / 2.0).reshape(1, -1, 1)
    dm = g.op1("ReduceSum", [contrib, _axes(g, 1)], "ex_dm", keepdims=1)  # [N, 1, K]
    m = g.op1("Add", [g.const(raw_bias.reshape(1, 1, k), "ex_mb"), g.op1("Mul", [g.const(t, "ex_t"), dm], "ex_tdm")],
              "ex_path")  # [N, Q, K]
    p = g.op1("Softmax", [m], "ex_path_p", axis=2)
    pw = g.op1("Mul", [p, g.const(w, "ex_w")], "ex_pw")
    outer = g.op1("MatMul", [g.op1("Transpose", [pw], "ex_pwt", perm=[0, 2, 1]), p], "ex_outer")  # [N, K, K]
    pbar = g.op1("ReduceSum", [pw, _axes(g, 1)], "ex_pbar", keepdims=0)  # [N, K]
    diag = g.op1("Mul", [g.op1("Unsqueeze", [pbar, _axes(g, 2)], "ex_pbar3"),
                         g.const(np.eye(k).reshape(1, k, k), "ex_eye")], "ex_diag")
    jac = g.op1("Sub", [diag, outer], "ex_jac")  # symmetric: c @ J gives sum_j c[f, j] J[j, k]
    return g.op1("MatMul", [contrib, jac], "ex_ig")


def _finish(g: Graph, raw: Var, raw_bias: np.ndarray, link: str, out: Var, n_feat: int) -> tuple[str, np.ndarray]:
    """(contributions [N, F, C] summing exactly to output - bias, bias [C])."""
    c = raw.name
    if link == "sigmoid":  # one margin, two probabilities: class 1 by the secant, class 0 its mirror
        pb1 = 1.0 / (1.0 + np.exp(-raw_bias[0]))
        bias = np.array([1.0 - pb1, pb1])
        p1 = g.op1("Gather", [out.name, g.const(np.array([1], dtype=np.int64), "ex_idx1")], "ex_p1", axis=1)
        deriv = g.op1("Mul", [p1, g.op1("Sub", [g.const(np.float64(1.0), "ex_one"), p1], "ex_q1")], "ex_dp1")
        dp = g.op1("Sub", [p1, g.const(np.array([[pb1]]), "ex_pb1")], "ex_dp")
        c1 = _secant(g, c, dp, deriv)
        c = g.op1("Concat", [g.op1("Neg", [c1], "ex_c0"), c1], "ex_c01", axis=2)
    elif link == "softmax":
        bias = np.exp(raw_bias - raw_bias.max()) / np.exp(raw_bias - raw_bias.max()).sum()
        c = _softmax_path(g, c, raw_bias)
    elif link == "exp":
        bias = np.exp(raw_bias)
        c = _secant(g, c, g.op1("Sub", [out.name, g.const(bias.reshape(1, -1), "ex_vb")], "ex_dv"), out.name)
    else:
        bias = raw_bias
    # what rounding (and float32 tree sums) leaves: shared out by |c|, evenly where every c is 0
    rest = g.op1("Sub", [g.op1("Sub", [out.name, g.const(bias.reshape(1, -1), "ex_bias_row")], "ex_delta"),
                         g.op1("ReduceSum", [c, _axes(g, 1)], "ex_sum", keepdims=0)], "ex_rest")
    a = g.op1("Abs", [c], "ex_abs")
    sa = g.op1("ReduceSum", [a, _axes(g, 1)], "ex_sum_abs", keepdims=1)
    some = g.op1("Greater", [sa, g.const(np.float64(0.0), "ex_zero")], "ex_some")
    share = g.op1("Where", [some, g.op1("Div", [a, g.op1("Where", [some, sa, g.const(np.float64(1.0), "ex_one")],
                                                          "ex_sa_safe")], "ex_prop"),
                            g.const(np.float64(1.0 / n_feat), "ex_even")], "ex_share")
    fix = g.op1("Mul", [g.op1("Unsqueeze", [rest, _axes(g, 1)], "ex_rest3"), share], "ex_fix")
    g.op("Add", [c, fix], out_names=["contributions"])
    return "contributions", bias


# -- the model -----------------------------------------------------------------------------------------------
def to_explain_onnx(pipeline: Any, schema: Schema, transformed_mean: np.ndarray | None, *, graph_name: str
                    ) -> ExplainGraph:
    """The explanation graph of ``pipeline``; ``Unexplained`` says why there is none.

    ``transformed_mean``: the mean of the estimator's input matrix over the export sample (linear models
    are explained against it).
    """
    steps = pipeline_steps(pipeline)
    final_name, final = steps[-1]
    family = explain_family(final)
    g = Graph()
    for reserved in (*OUTPUT_NAMES.values(), *EXPLAIN_OUTPUTS):
        g.reserve(reserved)
    inputs = []
    for f in schema.features:
        g.reserve(f.name)
        inputs.append(Var(f.name, STRING if f.kind == "category" else DOUBLE, 1))
    ctx = Context(feature_names=schema.names, origin=[f.name for f in schema.features])
    x: Any = inputs
    for name, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        x = convert_step(g, name, step, x, ctx)
    z = g.matrix(x, "ex_in")
    origin = list(ctx.origin) if ctx.origin is not None else None
    if z.dtype != DOUBLE or origin is None or len(origin) != z.width or any(o is None for o in origin):
        raise Unexplained("a step of the pipeline mixes input features (which input each of the estimator's "
                          "columns comes from is not known), so contributions cannot be given per input feature")
    index = {n: i for i, n in enumerate(schema.names)}
    group = np.zeros((z.width, len(schema.names)))
    for d, o in enumerate(origin):
        group[d, index[str(o)]] = 1.0
    predicted = convert_step(g, final_name, final, x, ctx)
    out = predicted.get("probabilities") or predicted.get("value")
    if out is None:
        raise Unexplained(f"{type(final).__name__} gives no probabilities or value to explain")
    if family == "trees":
        raw, raw_bias, _k = _tree_contributions(g, final, z, group)
        link = _tree_link(final, _k)
        method = "Saabas path contributions (node value changes along each row's path), computed by the graph"
    else:
        if transformed_mean is None or len(transformed_mean) != z.width:
            raise ExportError("linear explanations need the mean of the transformed export sample")
        raw, raw_bias, _k, link = _linear_contributions(g, final, z, group, np.asarray(transformed_mean, float))
        method = "coefficient × (input − its export-sample mean), one-hot columns summed to their feature"
    if link != "identity":
        method += ("; margin contributions mapped onto the " + ("value" if link == "exp" else "probability")
                   + " by integrated gradients of the link along the row's margin path")
    contrib, bias = _finish(g, raw, raw_bias, link, out, len(schema.names))
    g.op("Identity", [g.const(bias, "ex_bias")], out_names=["bias"])
    g.op("Identity", [out.name], out_names=["output"])
    n_out = len(bias)
    outputs = [helper.make_tensor_value_info(contrib, DOUBLE, [None, len(schema.names), n_out]),
               helper.make_tensor_value_info("bias", DOUBLE, [n_out]),
               helper.make_tensor_value_info("output", DOUBLE, [None, n_out])]
    graph = helper.make_graph(g.nodes, graph_name,
                              [helper.make_tensor_value_info(v.name, v.dtype, [None, 1]) for v in inputs],
                              outputs, initializer=g.initializers)
    used = dict(OPSETS) | {n.domain: 1 for n in g.nodes if n.domain not in OPSETS and n.domain != "ai.onnx"}
    opsets = [helper.make_opsetid(domain, version) for domain, version in sorted(used.items())]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="skedge", producer_version="1")
    model.ir_version = 10
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the explanation graph skedge built is invalid: {exc}") from exc
    return ExplainGraph(model, family, method, link, z.width)
