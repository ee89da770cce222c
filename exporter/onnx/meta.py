"""Converters for meta-estimators: TransformedTargetRegressor, Voting, Stacking, Bagging, multi-output regressors.

A meta-estimator's parts go through the same table (``convert_step``), so every inner step is exported by
its own converter (skedge's or the field's) and the meta-estimator adds only sklearn's own arithmetic
around them, in float64: ``np.average`` for soft voting, ``inverse_transform`` for the target.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, INT64, STRING, Graph, Var
from ._context import Context
from .transforms import power_inverse, quantile_inverse, ufunc_graph

__all__ = [
    "convert_transformed_target_regressor",
    "convert_voting_classifier",
    "convert_voting_regressor",
    "convert_stacking_classifier",
    "convert_stacking_regressor",
    "convert_multioutput_regressor",
    "convert_bagging_classifier",
    "convert_bagging_regressor",
    "TAKES_STRINGS",
]


def _takes_strings(est: Any) -> bool:
    """A part that can receive the raw string columns: a pipeline, a column transformer, a meta-estimator
    of this module, or a model with native categorical features."""
    from ._table import lookup

    native = getattr(est, "is_categorical_", None)
    return (hasattr(est, "steps") or hasattr(est, "transformers_") or lookup(est) in TAKES_STRINGS
            or (native is not None and bool(np.any(native))))


def _inner(g: Graph, name: str, est: Any, x: Var | list[Var], ctx: Context) -> Any:
    """Convert a part with the table; the origin of columns is shared, so each part starts from the input's."""
    from ._convert import convert_step

    if isinstance(x, list) and any(v.dtype == STRING for v in x) and not _takes_strings(est):
        raise ValueError(f"its part {name!r} ({type(est).__name__}) receives string columns: encode categories "
                         "(OneHotEncoder in a ColumnTransformer) in front of it")
    origin = list(ctx.origin) if ctx.origin is not None else None
    exact, ctx.exact_trees = ctx.exact_trees, True  # the parts' outputs are added up: exact tree sums
    try:
        return convert_step(g, name, est, x, ctx)
    finally:
        ctx.origin, ctx.exact_trees = origin, exact


def _value(out: Any, name: str) -> Var:
    if not isinstance(out, dict) or "value" not in out:
        raise ValueError(f"its part {name!r} is not a regressor")
    return out["value"]


def _inverse_target(g: Graph, transformer: Any, y: Var) -> Var:
    """``transformer_.inverse_transform(y)`` as sklearn computes it."""
    from sklearn.preprocessing import (
        FunctionTransformer,
        MaxAbsScaler,
        MinMaxScaler,
        PowerTransformer,
        QuantileTransformer,
        RobustScaler,
        StandardScaler,
    )

    def arr(v: Any, hint: str) -> str:
        return g.const(np.asarray(v, dtype=np.float64).reshape(1, -1), hint)

    t = transformer
    name = y.name
    if type(t) is FunctionTransformer:
        if t.inv_kw_args:
            raise ValueError("TransformedTargetRegressor's inverse_func with inv_kw_args is not translated")
        return ufunc_graph(g, t.inverse_func, y, "ttr_inv")
    if type(t) is StandardScaler:  # X *= scale_; X += mean_
        if t.with_std:
            name = g.op1("Mul", [name, arr(t.scale_, "ttr_scale")], "ttr_inv")
        if t.with_mean:
            name = g.op1("Add", [name, arr(t.mean_, "ttr_mean")], "ttr_inv")
    elif type(t) is RobustScaler:  # X *= scale_; X += center_
        if t.with_scaling:
            name = g.op1("Mul", [name, arr(t.scale_, "ttr_scale")], "ttr_inv")
        if t.with_centering:
            name = g.op1("Add", [name, arr(t.center_, "ttr_center")], "ttr_inv")
    elif type(t) is MinMaxScaler:  # X -= min_; X /= scale_
        name = g.op1("Div", [g.op1("Sub", [name, arr(t.min_, "ttr_min")], "ttr_inv"), arr(t.scale_, "ttr_scale")],
                     "ttr_inv")
    elif type(t) is MaxAbsScaler:  # X *= scale_
        name = g.op1("Mul", [name, arr(t.scale_, "ttr_scale")], "ttr_inv")
    elif type(t) is PowerTransformer:
        return power_inverse(g, t, y)
    elif type(t) is QuantileTransformer:
        return quantile_inverse(g, t, y)
    else:
        raise ValueError(f"TransformedTargetRegressor(transformer={type(t).__name__}): skedge inverts "
                         "FunctionTransformer over numpy ufuncs, the scalers (Standard, Robust, MinMax, MaxAbs), "
                         "PowerTransformer and QuantileTransformer(uniform)")
    return Var(name, DOUBLE, y.width)


def convert_transformed_target_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    # sklearn: pred = regressor_.predict(X); transformer_.inverse_transform(pred.reshape(-1, 1))
    pred = _value(_inner(g, "regressor", est.regressor_, x, ctx), "regressor")
    return {"value": _inverse_target(g, est.transformer_, pred)}


def _weights(est: Any, n: int) -> np.ndarray | None:
    w = getattr(est, "_weights_not_none", None)
    return None if w is None else np.asarray(w, dtype=np.float64)


def _average(g: Graph, parts: list[Var], weights: np.ndarray | None, hint: str) -> str:
    """``np.average(parts, axis=0, weights=weights)``: a sum in order, then one division."""
    if weights is None:  # np.mean: sum / n
        mean = parts[0].name
        for p in parts[1:]:
            mean = g.op1("Add", [mean, p.name], f"{hint}_sum")
        return g.op1("Div", [mean, g.const(np.float64(len(parts)), f"{hint}_n")], hint)
    # np.average: (a * w).sum(axis=0) / w.sum()
    total: str | None = None
    for p, w in zip(parts, weights, strict=True):
        term = g.op1("Mul", [p.name, g.const(np.float64(w), f"{hint}_w")], f"{hint}_term")
        total = term if total is None else g.op1("Add", [total, term], f"{hint}_sum")
    assert total is not None
    return g.op1("Div", [total, g.const(np.float64(weights.sum()), f"{hint}_wsum")], hint)


def _named(est: Any) -> list[tuple[str, Any]]:
    """The fitted parts with the user's names (``estimators_`` skips the dropped ones, in order)."""
    names = [n for n, e in est.estimators if e != "drop"]
    return list(zip(names, est.estimators_, strict=True))


def _first_max(g: Graph, scores: str, hint: str) -> Var:
    return Var(g.op1("ArgMax", [scores], hint, axis=1, keepdims=0, select_last_index=0), INT64, 1)


def convert_voting_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    parts = [_value(_inner(g, n, e, x, ctx), n) for n, e in _named(est)]
    return {"value": Var(_average(g, parts, _weights(est, len(parts)), "vote_value"), DOUBLE, 1)}


def _probabilities(out: Any, name: str, n_classes: int) -> Var:
    if not isinstance(out, dict) or "probabilities" not in out:
        raise ValueError(f"its part {name!r} gives no probabilities")
    p = out["probabilities"]
    if p.width != n_classes:
        raise ValueError(f"its part {name!r} gives {p.width} probabilities for {n_classes} classes")
    return p


def convert_voting_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    n_classes = len(est.classes_)
    if est.voting != "soft":
        return _hard_vote(g, est, x, ctx, n_classes)
    # the parts are fitted on le_.transform(y): their class order is est.classes_'s
    parts = [_probabilities(_inner(g, n, e, x, ctx), n, n_classes) for n, e in _named(est)]
    proba = _average(g, parts, _weights(est, len(parts)), "probabilities")
    # sklearn: argmax(predict_proba) (flatten_transform changes transform only)
    return {"probabilities": Var(proba, DOUBLE, n_classes), "label_index": _first_max(g, proba, "vote_label")}


def _hard_vote(g: Graph, est: Any, x: Var | list[Var], ctx: Context, n_classes: int) -> dict[str, Var]:
    """sklearn: ``argmax(bincount(part labels, weights))`` per row, the first maximum on a tie.

    The tally is each part's one-hot label times its weight, added in the parts' order as bincount adds them
    (a class a part did not vote for gets + 0.0, which changes nothing), so ties fall exactly where sklearn's do.
    There is no predict_proba: the bundle answers labels only.
    """
    weights = _weights(est, len(est.estimators_))
    k = g.const(np.arange(n_classes, dtype=np.int64)[None, :], "vote_k")
    axis = g.const(np.array([1], dtype=np.int64), "vote_axis")
    total: str | None = None
    for i, (name, e) in enumerate(_named(est)):
        out = _inner(g, name, e, x, ctx)
        if not isinstance(out, dict) or "label_index" not in out:
            raise ValueError(f"its part {name!r} is not a classifier skedge converts")
        # the parts are fitted on le_.transform(y): a part's label index is the class index of the vote
        hit = g.op1("Equal", [g.op1("Unsqueeze", [out["label_index"].name, axis], "vote_lab"), k], "vote_hit")
        term = g.op1("Cast", [hit], "vote_one", to=DOUBLE)
        if weights is not None:
            term = g.op1("Mul", [term, g.const(np.float64(weights[i]), "vote_w")], "vote_term")
        total = term if total is None else g.op1("Add", [total, term], "vote_tally")
    assert total is not None
    return {"label_index": _first_max(g, total, "vote_label")}


def _stack_features(g: Graph, est: Any, x: Var | list[Var], ctx: Context, classifier: bool) -> Var:
    """StackingClassifier/Regressor.transform: each part's stack_method output, then X if passthrough."""
    cols: list[Var] = []
    n_classes = len(est.classes_) if classifier else 0
    for (name, e), method in zip(_named(est), est.stack_method_, strict=True):
        out = _inner(g, name, e, x, ctx)
        if method == "predict_proba":
            p = _probabilities(out, name, n_classes)
            if n_classes == 2:  # sklearn keeps the second column only for a binary problem
                p = g.select(p, [1], f"{name}_p1")
            cols.append(p)
        elif method == "predict" and not classifier:
            cols.append(_value(out, name))
        elif method == "decision_function" and isinstance(out, dict) and "decision" in out:
            cols.append(out["decision"])
        else:
            raise ValueError(f"its part {name!r} is stacked by {method}, which skedge does not translate; "
                             "use stack_method='predict_proba' (classifiers)")
    if est.passthrough:
        m = g.matrix(x, "stack_x")
        cols.append(g.cast(m, DOUBLE, "stack_x_d"))
    return g.matrix(cols, "stack_features")


def convert_stacking_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    feats = _stack_features(g, est, x, ctx, classifier=True)
    ctx.origin = None
    out = _inner(g, "final_estimator", est.final_estimator_, feats, ctx)
    if not isinstance(out, dict) or "label_index" not in out:
        raise ValueError("its final_estimator is not a classifier skedge converts")
    return out


def convert_stacking_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    feats = _stack_features(g, est, x, ctx, classifier=False)
    ctx.origin = None
    return {"value": _value(_inner(g, "final_estimator", est.final_estimator_, feats, ctx), "final_estimator")}


def convert_multioutput_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    # sklearn: np.asarray([part.predict(X) for part in estimators_]).T, one column per output
    values = [_value(_inner(g, f"output_{i}", e, x, ctx), f"output_{i}") for i, e in enumerate(est.estimators_)]
    if any(v.width != 1 for v in values):
        raise ValueError("one of its parts predicts several outputs itself")
    return {"value": g.matrix(values, "multi_value")}


def _bagged_parts(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> list[tuple[Any, Any]]:
    """Each fitted part on its own columns, ``X[:, estimators_features_[i]]``, converted by the table.

    Bagging validates X with ``dtype=None`` and hands the parts float64 columns; a tree part then casts them to
    float32 itself, as its own converter does. skl2onnx's Bagging compares its trees in float32 against float32
    thresholds, which the sweep measured 0.4 off on threshold rows: this is why Bagging is skedge's own.
    """
    if any(v.dtype == STRING for v in (x if isinstance(x, list) else [x])):
        raise ValueError("it receives string columns: encode categories (OneHotEncoder in a ColumnTransformer) in "
                         "front of it")
    m = g.matrix(x, "bag_x")
    origin = list(ctx.origin) if ctx.origin is not None else None
    parts = []
    try:
        for i, (e, features) in enumerate(zip(est.estimators_, est.estimators_features_, strict=True)):
            cols = [int(c) for c in features]
            ctx.origin = [origin[c] for c in cols] if origin is not None and len(origin) == m.width else None
            parts.append((e, _inner(g, f"estimator_{i}", e, g.select(m, cols, f"bag_cols{i}"), ctx)))
    finally:
        ctx.origin = origin
    return parts


def convert_bagging_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    # sklearn: sum(part.predict(X[:, features]) for each part) / n_estimators (a sum per job, then of the jobs:
    # the same numbers summed in another grouping differ by an ulp or two, far inside the bound)
    values = [_value(out, f"estimator_{i}") for i, (_, out) in enumerate(_bagged_parts(g, est, x, ctx))]
    return {"value": Var(_average(g, values, None, "bag_value"), DOUBLE, 1)}


def convert_bagging_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    n_classes = len(est.classes_)
    shares: list[Var] = []
    for i, (e, out) in enumerate(_bagged_parts(g, est, x, ctx)):
        own = np.asarray(e.classes_, dtype=np.int64)  # the part was fitted on classes_'s indices, maybe fewer
        if hasattr(e, "predict_proba"):
            p = _probabilities(out, f"estimator_{i}", len(own))
        else:  # sklearn falls back on votes: proba[i, predictions[i]] += 1
            if not isinstance(out, dict) or "label_index" not in out:
                raise ValueError(f"its part 'estimator_{i}' ({type(e).__name__}) gives neither probabilities nor "
                                 "labels skedge converts")
            axis = g.const(np.array([1], dtype=np.int64), "ax")
            lab = g.op1("Unsqueeze", [out["label_index"].name, axis], "bag_lab")
            hit = g.op1("Equal", [lab, g.const(np.arange(len(own), dtype=np.int64)[None, :], "bag_k")], "bag_hit")
            p = Var(g.op1("Cast", [hit], "bag_vote", to=DOUBLE), DOUBLE, len(own))
        if len(own) != n_classes:  # proba[:, part.classes_] += ...: a 0/1 matrix places the columns, exactly
            place = np.zeros((len(own), n_classes))
            place[np.arange(len(own)), own] = 1.0
            p = Var(g.op1("MatMul", [p.name, g.const(place, "bag_place")], "bag_proba"), DOUBLE, n_classes)
        shares.append(p)
    proba = _average(g, shares, None, "probabilities")
    return {"probabilities": Var(proba, DOUBLE, n_classes), "label_index": _first_max(g, proba, "bag_label")}


# converters whose parts may take the raw input, strings included (to_onnx lets string columns reach them)
TAKES_STRINGS = frozenset({convert_transformed_target_regressor, convert_voting_classifier, convert_voting_regressor,
                           convert_stacking_classifier, convert_stacking_regressor, convert_multioutput_regressor})
