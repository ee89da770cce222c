"""HistGradientBoosting with native categorical splits (skl2onnx gets most labels wrong: DESIGN.md "Coverage").

A fitted model with categorical features holds a ``_preprocessor``: an OrdinalEncoder for the categorical
columns (unknown and missing -> NaN), the numerical ones passed through, the categorical ones first. Its
trees then send a category code left when it is in the node's bitset, right when it is another known code,
and like a missing value otherwise (``_predictor.pyx``). ai.onnx.ml v3 trees have no set-membership test,
so each distinct (feature, left set) becomes one extra input column of the ensemble: 0 for a code in the
set, 1 for another known code, NaN for missing or unknown; the node tests that column ``<= 0.5`` and sends
NaN where sklearn sends missing values. Numerical splits stay ``x <= threshold`` in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._sklearn_trees import hgb_categorical_trees
from ._builder import DOUBLE, INT64, STRING, Graph, Var
from ._context import Context
from .preprocessing import _category_field, _known, _match
from .trees import Ensemble, convert_hgb_classifier, convert_hgb_regressor

__all__ = ["convert_hgb_classifier_categorical", "convert_hgb_regressor_categorical"]


def _has_categories(est: Any) -> bool:
    return getattr(est, "_preprocessor", None) is not None


def _known_codes(est: Any) -> dict[int, set[int]]:
    """Remapped feature index -> the category codes the bin mapper saw in training."""
    bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    out = {}
    for p in np.where(est._is_categorical_remapped)[0]:
        words = np.asarray(bitsets[int(f_idx_map[p])], dtype=np.uint32)
        out[int(p)] = {v for v in range(32 * len(words)) if (words[v // 32] >> (v % 32)) & 1}
    return out


def _raw(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> Var:
    pre = est._preprocessor
    cols = g.columns(x, "hgbc_in")
    n = len(cols)
    is_cat = np.asarray(est.is_categorical_, dtype=bool)
    if len(is_cat) != n:
        raise ValueError(f"it was fitted on {len(is_cat)} columns and receives {n}")
    cat_in, num_in = np.where(is_cat)[0], np.where(~is_cat)[0]
    enc_pos = np.arange(n)[pre.output_indices_["encoder"]]
    num_pos = np.arange(n)[pre.output_indices_["numerical"]]
    encoder = pre.named_transformers_["encoder"]
    known = _known_codes(est)

    # the tree input: the remapped columns (numerical ones as they are), then one column per left set
    remapped: list[Var | None] = [None] * n
    for p, i in zip(num_pos, num_in, strict=True):
        if cols[i].dtype == STRING:
            raise TypeError(f"column {i} holds strings and is not a categorical feature of the model")
        remapped[int(p)] = g.cast(cols[i], DOUBLE, "hgbc_num")
    onehots: dict[int, tuple[str, int]] = {}
    for k, (p, i) in enumerate(zip(enc_pos, cat_in, strict=True)):
        cats = [c for c in encoder.categories_[k] if not (isinstance(c, float) and c != c)]
        _known(ctx, _category_field(ctx, int(i)), cols[i], cats)
        onehot = g.op1("Cast", [_match(g, cols[i], cats, "hgbc")], "hgbc_onehot", to=DOUBLE)
        onehots[int(p)] = (onehot, len(cats))

    trees = list(hgb_categorical_trees(est))
    sets: dict[tuple[int, frozenset[int]], int] = {}
    for t in trees:
        for node, codes in t.left_codes.items():
            sets.setdefault((int(t.tree.feature[node]), codes), len(sets))
    extra: list[Var] = []
    by_feature: dict[int, list[tuple[frozenset[int], int]]] = {}
    for (p, codes), col in sets.items():
        by_feature.setdefault(p, []).append((codes, col))
    for p, members in sorted(by_feature.items()):
        onehot, k = onehots[p]
        kn = known[p]
        left = np.array([[1.0 if (c in codes and c in kn) else 0.0 for codes, _ in members] for c in range(k)])
        seen = np.array([[1.0 if c in kn else 0.0] for c in range(k)])
        in_left = g.op1("MatMul", [onehot, g.const(left, "hgbc_left")], "hgbc_in_left")
        is_known = g.op1("Greater", [g.op1("MatMul", [onehot, g.const(seen, "hgbc_seen")], "hgbc_known_d"),
                                     g.const(np.float64(0.5), "half_d")], "hgbc_known")
        # 0 goes left (<= 0.5), 1 goes right, NaN follows the node's missing-value branch
        side = g.op1("Sub", [g.const(np.float64(1.0), "one_d"), in_left], "hgbc_side")
        side = g.op1("Where", [is_known, side, g.const(np.float64(np.nan), "nan_d")], "hgbc_side")
        extra.append(Var(side, DOUBLE, len(members)))
    offset: dict[int, int] = {}
    at = n
    for _p, members in sorted(by_feature.items()):
        for j, (_, col) in enumerate(members):
            offset[col] = at + j
        at += len(members)
    # categorical positions are never tested as numbers: any double column of the right height holds them
    filler = Var(g.op1("Cast", [g.op1("ReduceMax", [next(iter(onehots.values()))[0],
                                                    g.const(np.array([1], dtype=np.int64), "axis1")],
                                      "hgbc_fill", keepdims=1)], "hgbc_filler", to=DOUBLE), DOUBLE, 1)
    matrix = g.matrix([v if v is not None else filler for v in remapped] + extra, "hgbc_matrix")

    ens = Ensemble(n_targets=est.n_trees_per_iteration_)
    for t in trees:
        feature = t.tree.feature.copy()
        threshold = t.tree.threshold.copy()
        for node, codes in t.left_codes.items():
            feature[node] = offset[sets[(int(t.tree.feature[node]), codes)]]
            threshold[node] = 0.5
        leaves = {node: [(t.tree.target, v)] for node, v in t.tree.leaves.items()}
        ens.add_tree(t.tree.left, t.tree.right, feature, threshold, t.tree.missing_left, leaves)
    total = ens.emit(g, matrix, "hgbc_sum")
    base = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(1, -1)
    ctx.origin = None
    return Var(g.op1("Add", [total.name, g.const(base, "hgbc_base")], "hgbc_raw"), DOUBLE, total.width)


def convert_hgb_regressor_categorical(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    if not _has_categories(est):
        return convert_hgb_regressor(g, est, x, ctx)
    raw = _raw(g, est, x, ctx)
    if est.loss in ("poisson", "gamma"):
        return {"value": Var(g.op1("Exp", [raw.name], "hgbc_value"), DOUBLE, 1)}
    if est.loss not in ("squared_error", "absolute_error", "quantile"):
        raise ValueError(f"HistGradientBoostingRegressor(loss={est.loss!r}) is not supported")
    return {"value": raw}


def convert_hgb_classifier_categorical(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    if not _has_categories(est):
        return convert_hgb_classifier(g, est, x, ctx)
    raw = _raw(g, est, x, ctx)
    if raw.width == 1:  # sklearn: expit(raw) for class 1
        p1 = g.op1("Sigmoid", [raw.name], "hgbc_p1")
        p0 = g.op1("Sub", [g.const(np.array([[1.0]]), "one"), p1], "hgbc_p0")
        proba = g.op1("Concat", [p0, p1], "probabilities", axis=1)
        n_classes = 2
    else:
        proba = g.op1("Softmax", [raw.name], "probabilities", axis=1)
        n_classes = raw.width
    # sklearn: argmax of predict_proba, the first maximum
    label = g.op1("ArgMax", [proba], "label_index", axis=1, keepdims=0, select_last_index=0)
    return {"probabilities": Var(proba, DOUBLE, n_classes), "label_index": Var(label, INT64, 1)}
