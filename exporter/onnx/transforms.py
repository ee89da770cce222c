"""Exact converters for transformers skl2onnx gets wrong or refuses (DESIGN.md "Coverage").

Each one writes sklearn's ``transform`` operation for operation in float64:

* ``Binarizer``: ``x > threshold`` (so ``x == threshold`` is 0; skl2onnx answers 1).
* ``FunctionTransformer`` over a numpy ufunc (``np.log1p``, ``np.sqrt``, ...); any other function stays refused.
* ``SimpleImputer(add_indicator=True)``: the imputed columns, then one indicator per column that had missing
  values in training (``indicator_.features_``), numbers and strings.
* ``PowerTransformer``: scipy's Yeo-Johnson / Box-Cox formulas (log1p/expm1 forms), then the fitted scaler.
* ``QuantileTransformer``: ``np.interp`` both directions averaged, the exact bound rules, ``norm.ppf`` and
  its clip for ``output_distribution="normal"``.
* ``TargetEncoder``: the fitted ``encodings_`` (what ``transform`` uses; ``fit_transform``'s cross-fitted
  values exist only for the training rows), unseen and untrained-missing values get ``target_mean_``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from ._builder import BOOL, DOUBLE, STRING, Graph, Var
from ._context import Context
from ._numeric import expm1, interp, log1p, ndtri
from .folding import Monotone, register
from .preprocessing import _category_field, _known, _match, convert_simple_imputer
from .preprocessing import convert_function_transformer as _refuse_function

__all__ = [
    "convert_binarizer",
    "convert_function_transformer",
    "convert_simple_imputer_with_indicator",
    "convert_power_transformer",
    "convert_quantile_transformer",
    "convert_target_encoder",
    "UFUNCS",
    "ufunc_graph",
    "power_inverse",
    "quantile_inverse",
]

Unary = Callable[[Graph, str, str], str]


def _op(op_type: str) -> Unary:
    return lambda g, x, hint: g.op1(op_type, [x], hint)


def _scaled_log(base: float) -> Unary:
    # numpy's log2/log10 round once; Log then Div rounds twice: within 2 ulps, stated in the card
    return lambda g, x, hint: g.op1("Div", [g.op1("Log", [x], f"{hint}_ln"), g.const(np.log(np.float64(base)),
                                                                                      f"{hint}_lnb")], hint)


# numpy ufunc -> the same function in ONNX ops (double kernels in onnxruntime, checked by the tests)
UFUNCS: dict[Any, Unary] = {
    np.log1p: log1p,
    np.expm1: expm1,
    np.log: _op("Log"),
    np.exp: _op("Exp"),
    np.sqrt: _op("Sqrt"),
    np.abs: _op("Abs"),
    np.negative: _op("Neg"),
    np.reciprocal: _op("Reciprocal"),
    np.square: lambda g, x, hint: g.op1("Mul", [x, x], hint),
    np.tanh: _op("Tanh"),
    np.floor: _op("Floor"),
    np.ceil: _op("Ceil"),
    np.sign: _op("Sign"),
    np.log2: _scaled_log(2.0),
    np.log10: _scaled_log(10.0),
}


_MAX = float(np.finfo(np.float64).max)
# the ufuncs that are non-decreasing, from where (a tree after them is folded: folding.py)
_INCREASING: dict[Any, float] = {np.log1p: -1.0, np.expm1: -_MAX, np.log: 0.0, np.exp: -_MAX, np.sqrt: 0.0,
                                 np.tanh: -_MAX, np.log2: 0.0, np.log10: 0.0}


def _sklearn_transform(step: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The fitted step's own transform on a float64 matrix (named columns where it was fitted on a frame)."""
    import warnings

    import pandas as pd

    names = getattr(step, "feature_names_in_", None)

    def run(a: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(a, columns=list(names)) if names is not None else a
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(step.transform(frame), dtype=np.float64)

    return run


def ufunc_graph(g: Graph, func: Any, x: Var, hint: str) -> Var:
    """``func(x)`` for a supported numpy ufunc (``None`` is the identity); ValueError naming the others."""
    if func is None:
        return x
    if func not in UFUNCS:
        raise ValueError(f"{getattr(func, '__name__', func)!r} is not one of the numpy functions skedge "
                         f"translates ({', '.join(sorted(f.__name__ for f in UFUNCS))})")
    if func in (np.log2, np.log10):
        g.note(f"np.{func.__name__} is computed as log(x) / log({2 if func is np.log2 else 10}): within 2 ulps")
    return Var(UFUNCS[func](g, x.name, f"ft_{func.__name__}"), DOUBLE, x.width)


def _numbers(g: Graph, x: Var | list[Var], hint: str) -> Var:
    m = g.matrix(x, hint)
    if m.dtype == STRING:
        raise TypeError("it takes numbers, and receives string columns")
    return g.cast(m, DOUBLE, f"{hint}_d")


def convert_binarizer(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var:
    m = _numbers(g, x, "bin_in")
    # sklearn: X > threshold -> 1, else 0 (NaN > t is False, so 0, in both)
    gt = g.op1("Greater", [m.name, g.const(np.float64(step.threshold), "bin_t")], "bin_gt")
    ctx.origin = None
    return Var(g.op1("Cast", [gt], "binarized", to=DOUBLE), DOUBLE, m.width)


def convert_kbins_discretizer(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var:
    """sklearn: a column's bin is ``searchsorted(edges[1:-1], z, side="right")``, the count of inner edges
    ``<= z`` (so a value on an edge goes up), compared in float64; then its one-hot column or the bin itself.
    skl2onnx's converter was measured off on rows placed on the edges (0.39 in probability)."""
    if step.dtype not in (None, np.float64):
        raise ValueError(f"KBinsDiscretizer(dtype={step.dtype!r}) is not translated: only float64 output is")
    m = _numbers(g, x, "kb_in")
    outs = []
    for col, edges, n_bins in zip(g.columns(m, "kb_col"), step.bin_edges_, step.n_bins_, strict=True):
        inner = np.asarray(edges, dtype=np.float64)[1:-1].reshape(1, -1)
        if inner.size:
            ge = g.op1("GreaterOrEqual", [col.name, g.const(inner, "kb_edges")], "kb_ge")
            count = g.op1("ReduceSum", [g.op1("Cast", [ge], "kb_ge_d", to=DOUBLE),
                                        g.const(np.array([1], dtype=np.int64), "axis1")], "kb_bin", keepdims=1)
        else:  # one bin: every value is bin 0
            count = g.op1("Mul", [col.name, g.const(np.array([[0.0]]), "zero")], "kb_bin")
        if step.encode == "ordinal":
            outs.append(Var(count, DOUBLE, 1))
        else:
            bins = g.const(np.arange(int(n_bins), dtype=np.float64).reshape(1, -1), "kb_bins")
            hot = g.op1("Cast", [g.op1("Equal", [count, bins], "kb_eq")], "kb_hot", to=DOUBLE)
            outs.append(Var(hot, DOUBLE, int(n_bins)))
    ctx.origin = None
    return g.matrix(outs, "kbins")


def convert_function_transformer(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var | list[Var]:
    if step.func is None:  # sklearn >= 1.6 stores a ColumnTransformer's "passthrough" this way
        return x
    if step.func not in UFUNCS:
        return _refuse_function(g, step, x, ctx)
    if step.kw_args:
        raise ValueError(f"FunctionTransformer({step.func.__name__}, kw_args={step.kw_args!r}): keyword "
                         "arguments are not translated")
    m = _numbers(g, x, "ft_in")
    ctx.origin = None
    out = ufunc_graph(g, step.func, m, "ft")
    if step.func in _INCREASING:
        low = _INCREASING[step.func]
        register(g, Monotone(m, out, _sklearn_transform(step), (low,) * m.width, (1.0,) * m.width))
    return out


def convert_simple_imputer_with_indicator(g: Graph, imp: Any, x: Var | list[Var], ctx: Context) -> Var | list[Var]:
    """SimpleImputer with or without ``add_indicator``: sklearn's ``hstack([imputed, indicator])``."""
    if not getattr(imp, "add_indicator", False):
        return convert_simple_imputer(g, imp, x, ctx)
    cols = g.columns(x, "ind_in")
    plain = copy.copy(imp)
    plain.add_indicator = False
    imputed = convert_simple_imputer(g, plain, cols, ctx)
    origin: list[str | None] = [None] * imputed.width
    if ctx.origin is not None and len(ctx.origin) == imputed.width:
        origin = list(ctx.origin)
    strings = imputed.dtype == STRING
    indicators = []
    for j in (int(f) for f in imp.indicator_.features_):
        # a NaN category matches whatever marks a missing value in that column (the encoders' one rule)
        missing = _match(g, cols[j], [np.nan], "ind")
        if strings:
            # np.hstack of an object array with a bool one keeps Python bools: an encoder after it sees
            # True/False, whose categories the graph spells "True"/"False"
            word = g.op1("Where", [missing, g.const(np.array(["True"], dtype=object), "ind_true"),
                                   g.const(np.array(["False"], dtype=object), "ind_false")], "indicator")
            indicators.append(Var(word, STRING, 1))
        else:
            indicators.append(Var(g.op1("Cast", [missing], "indicator", to=DOUBLE), DOUBLE, 1))
    # indicators have no input field of their own: an encoder after them must not learn categories for one
    ctx.origin = origin + [None] * len(indicators)
    if strings:
        return g.columns(imputed, "ind_imp") + indicators
    return g.matrix([imputed, *indicators], "with_indicator")


def _per_column(g: Graph, m: Var, fn: Callable[[Var, int], str], hint: str) -> Var:
    outs = [Var(fn(col, j), DOUBLE, 1) for j, col in enumerate(g.columns(m, f"{hint}_col"))]
    return g.matrix(outs, hint)


def _yeo_johnson(g: Graph, x: Var, lmbda: float, hint: str) -> str:
    """scipy.stats.yeojohnson(x, lmbda), branch for branch."""
    eps = np.finfo(np.float64).eps
    lam = np.float64(lmbda)
    pos_in = g.op1("Max", [x.name, g.const(np.float64(0.0), "zero_d")], f"{hint}_xpos")
    lp = log1p(g, pos_in, f"{hint}_lp")
    if abs(lam) < eps:
        pos = lp
    else:  # expm1(lmbda * log1p(x)) / lmbda
        pos = g.op1("Div", [expm1(g, g.op1("Mul", [g.const(lam, f"{hint}_lam"), lp], f"{hint}_ml"),
                                  f"{hint}_em"), g.const(lam, f"{hint}_lam")], f"{hint}_pos")
    neg_in = g.op1("Neg", [g.op1("Min", [x.name, g.const(np.float64(0.0), "zero_d")], f"{hint}_xneg")],
                   f"{hint}_nx")
    ln = log1p(g, neg_in, f"{hint}_ln")
    if abs(lam - 2) > eps:  # -expm1((2 - lmbda) * log1p(-x)) / (2 - lmbda)
        k = g.const(np.float64(2 - lam), f"{hint}_2ml")
        neg = g.op1("Div", [g.op1("Neg", [expm1(g, g.op1("Mul", [k, ln], f"{hint}_mn"), f"{hint}_en")],
                                  f"{hint}_nen"), k], f"{hint}_neg")
    else:
        neg = g.op1("Neg", [ln], f"{hint}_neg")
    out = g.op1("Where", [g.op1("GreaterOrEqual", [x.name, g.const(np.float64(0.0), "zero_d")], f"{hint}_ge0"),
                          pos, neg], hint)
    # NaN fails x >= 0 and goes through the negative branch, where Min/Max may have eaten it
    return g.op1("Where", [g.op1("IsNaN", [x.name], f"{hint}_isnan"), x.name, out], hint)


def _box_cox(g: Graph, x: Var, lmbda: float, hint: str) -> str:
    """scipy.special.boxcox(x, lmbda): log(x) for |lmbda| < 1e-19, else expm1(lmbda * log(x)) / lmbda."""
    lg = g.op1("Log", [x.name], f"{hint}_log")
    if abs(lmbda) < 1e-19:
        return lg
    lam = g.const(np.float64(lmbda), f"{hint}_lam")
    return g.op1("Div", [expm1(g, g.op1("Mul", [lam, lg], f"{hint}_ml"), f"{hint}_em"), lam], hint)


def convert_power_transformer(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var:
    m = _numbers(g, x, "pow_in")
    if step.method == "yeo-johnson":
        out = _per_column(g, m, lambda c, j: _yeo_johnson(g, c, float(step.lambdas_[j]), f"yj{j}"), "pow")
    elif step.method == "box-cox":
        g.note("PowerTransformer(box-cox): sklearn refuses values <= 0; the graph answers log's NaN/-inf")
        out = _per_column(g, m, lambda c, j: _box_cox(g, c, float(step.lambdas_[j]), f"bc{j}"), "pow")
    else:
        raise ValueError(f"PowerTransformer(method={step.method!r}) is not supported")
    if step.standardize:
        sc = step._scaler  # sklearn: X -= mean_; X /= scale_ (the fitted StandardScaler)
        name = g.op1("Sub", [out.name, g.const(np.asarray(sc.mean_, dtype=np.float64).reshape(1, -1), "pow_mean")],
                     "pow_std")
        name = g.op1("Div", [name, g.const(np.asarray(sc.scale_, dtype=np.float64).reshape(1, -1), "pow_scale")],
                     "pow_std")
        out = Var(name, DOUBLE, m.width)
    box = step.method == "box-cox"
    register(g, Monotone(m, out, _sklearn_transform(step), ((5e-324 if box else -_MAX),) * m.width,
                         (1.0,) * m.width))
    return out


# sklearn.preprocessing._data.BOUNDS_THRESHOLD
_BOUNDS_THRESHOLD = 1e-7


def _quantile_column(g: Graph, x: Var, quantiles: np.ndarray, references: np.ndarray, normal: bool,
                     hint: str) -> str:
    """QuantileTransformer._transform_col(X_col, quantiles, inverse=False)."""
    q = np.asarray(quantiles, dtype=np.float64)
    ref = np.asarray(references, dtype=np.float64)
    lo_x, hi_x = float(q[0]), float(q[-1])
    if normal:
        t = g.const(np.float64(_BOUNDS_THRESHOLD), "q_bound_t")
        lower = g.op1("Less", [g.op1("Sub", [x.name, t], f"{hint}_xm"), g.const(np.float64(lo_x), f"{hint}_lo")],
                      f"{hint}_lower")
        upper = g.op1("Greater", [g.op1("Add", [x.name, t], f"{hint}_xp"), g.const(np.float64(hi_x), f"{hint}_hi")],
                      f"{hint}_upper")
    else:
        lower = g.op1("Equal", [x.name, g.const(np.float64(lo_x), f"{hint}_lo")], f"{hint}_lower")
        upper = g.op1("Equal", [x.name, g.const(np.float64(hi_x), f"{hint}_hi")], f"{hint}_upper")
    # 0.5 * (interp(x, q, ref) - interp(-x, -q[::-1], -ref[::-1])): repeated quantiles averaged
    up = interp(g, x, q, ref, f"{hint}_up")
    negx = Var(g.op1("Neg", [x.name], f"{hint}_negx"), DOUBLE, 1)
    down = interp(g, negx, -q[::-1], -ref[::-1], f"{hint}_down")
    val = g.op1("Mul", [g.const(np.float64(0.5), "half_d"), g.op1("Sub", [up, down], f"{hint}_diff")], hint)
    val = g.op1("Where", [upper, g.const(np.float64(1.0), "one_d"), val], hint)
    val = g.op1("Where", [lower, g.const(np.float64(0.0), "zero_d"), val], hint)
    if not normal:
        return val
    from scipy import stats

    eps = np.spacing(1)
    clip_min = float(stats.norm.ppf(_BOUNDS_THRESHOLD - eps))
    clip_max = float(stats.norm.ppf(1 - (_BOUNDS_THRESHOLD - eps)))
    z = ndtri(g, val, f"{hint}_ppf")
    # np.clip keeps NaN: compare-and-select (NaN fails both comparisons)
    lo, hi = g.const(np.float64(clip_min), f"{hint}_cmin"), g.const(np.float64(clip_max), f"{hint}_cmax")
    z = g.op1("Where", [g.op1("Less", [z, lo], f"{hint}_below"), lo, z], hint)
    return g.op1("Where", [g.op1("Greater", [z, hi], f"{hint}_above"), hi, z], hint)


def convert_quantile_transformer(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var:
    if step.output_distribution not in ("uniform", "normal"):
        raise ValueError(f"QuantileTransformer(output_distribution={step.output_distribution!r}) is not supported")
    m = _numbers(g, x, "qt_in")
    normal = step.output_distribution == "normal"
    if normal:
        g.note("QuantileTransformer(normal): norm.ppf as Wichura's AS241 in float64 (1e-15 relative of scipy's)")
    qs = np.asarray(step.quantiles_, dtype=np.float64)
    out = _per_column(g, m, lambda c, j: _quantile_column(g, c, qs[:, j], step.references_, normal, f"qt{j}"),
                      "quantile")
    if normal:  # uniform is np.interp bit for bit: exact at every split without folding
        register(g, Monotone(m, out, _sklearn_transform(step), (-_MAX,) * m.width,
                             tuple(float(v) for v in qs[len(qs) // 2])))
    return out


def convert_target_encoder(g: Graph, enc: Any, x: Var | list[Var], ctx: Context) -> Var:
    cols = g.columns(x, "te_in")
    multiclass = enc.target_type_ == "multiclass"
    n_classes = len(enc.classes_) if multiclass else 1
    means = np.atleast_1d(np.asarray(enc.target_mean_, dtype=np.float64))
    parts = []
    for j, (c, cats) in enumerate(zip(cols, enc.categories_, strict=True)):
        _known(ctx, _category_field(ctx, j), c, cats)
        eq = _match(g, c, list(cats), "te")
        onehot = g.op1("Cast", [eq], "te_onehot", to=DOUBLE)
        seen = g.op1("Cast", [g.op1("ReduceMax", [onehot, g.const(np.array([1], dtype=np.int64), "axis1")],
                                    "te_seen", keepdims=1)], "te_seen_b", to=BOOL)
        for k in range(n_classes):
            e_idx = j * n_classes + k
            enc_k = np.asarray(enc.encodings_[e_idx], dtype=np.float64)
            # one 1.0 times the encoding plus zeros: exactly the encoding (Where keeps NaN-free lanes apart)
            code = g.op1("MatMul", [onehot, g.const(enc_k.reshape(-1, 1), "te_codes")], "te_code")
            mean = g.const(np.array([[means[k if multiclass else 0]]]), "te_mean")
            parts.append(Var(g.op1("Where", [seen, code, mean], "te"), DOUBLE, 1))
    ctx.origin = None
    return g.matrix(parts, "te_out")


def _yeo_johnson_inverse(g: Graph, x: Var, lmbda: float, hint: str) -> str:
    """PowerTransformer._yeo_johnson_inverse_transform(x, lmbda), branch for branch."""
    eps = np.spacing(1.0)
    one = g.const(np.float64(1.0), "one_d")
    if abs(lmbda) < eps:  # np.exp(x) - 1
        pos = g.op1("Sub", [g.op1("Exp", [x.name], f"{hint}_exp"), one], f"{hint}_pos")
    else:  # np.power(x * lmbda + 1, 1 / lmbda) - 1
        base = g.op1("Add", [g.op1("Mul", [x.name, g.const(np.float64(lmbda), f"{hint}_lam")], f"{hint}_xl"), one],
                     f"{hint}_base")
        pos = g.op1("Sub", [g.op1("Pow", [base, g.const(np.float64(1 / lmbda), f"{hint}_inv")], f"{hint}_pow"), one],
                    f"{hint}_pos")
    if abs(lmbda - 2) > eps:  # 1 - np.power(-(2 - lmbda) * x + 1, 1 / (2 - lmbda))
        base = g.op1("Add", [g.op1("Mul", [g.const(np.float64(-(2 - lmbda)), f"{hint}_k"), x.name], f"{hint}_kx"),
                             one], f"{hint}_nbase")
        neg = g.op1("Sub", [one, g.op1("Pow", [base, g.const(np.float64(1 / (2 - lmbda)), f"{hint}_ninv")],
                                       f"{hint}_npow")], f"{hint}_neg")
    else:  # 1 - np.exp(-x)
        neg = g.op1("Sub", [one, g.op1("Exp", [g.op1("Neg", [x.name], f"{hint}_nx")], f"{hint}_nexp")],
                    f"{hint}_neg")
    ge0 = g.op1("GreaterOrEqual", [x.name, g.const(np.float64(0.0), "zero_d")], f"{hint}_ge0")
    return g.op1("Where", [ge0, pos, neg], hint)


def _box_cox_inverse(g: Graph, x: Var, lmbda: float, hint: str) -> str:
    """scipy.special.inv_boxcox: exp(x) for lmbda == 0, else exp(log1p(lmbda * x) / lmbda)."""
    if lmbda == 0:
        return g.op1("Exp", [x.name], hint)
    lam = g.const(np.float64(lmbda), f"{hint}_lam")
    return g.op1("Exp", [g.op1("Div", [log1p(g, g.op1("Mul", [lam, x.name], f"{hint}_lx"), f"{hint}_lp"), lam],
                               f"{hint}_q")], hint)


def power_inverse(g: Graph, step: Any, y: Var) -> Var:
    """``PowerTransformer.inverse_transform``: the scaler undone (X *= scale_; X += mean_), then the power."""
    name = y.name
    if step.standardize:
        sc = step._scaler
        name = g.op1("Mul", [name, g.const(np.asarray(sc.scale_, dtype=np.float64).reshape(1, -1), "pinv_scale")],
                     "pinv")
        name = g.op1("Add", [name, g.const(np.asarray(sc.mean_, dtype=np.float64).reshape(1, -1), "pinv_mean")],
                     "pinv")
    m = Var(name, DOUBLE, y.width)
    inv = _yeo_johnson_inverse if step.method == "yeo-johnson" else _box_cox_inverse
    return _per_column(g, m, lambda c, j: inv(g, c, float(step.lambdas_[j]), f"pinv{j}"), "power_inverse")


def quantile_inverse(g: Graph, step: Any, y: Var) -> Var:
    """``QuantileTransformer.inverse_transform`` (uniform): np.interp from references_ to quantiles_."""
    if step.output_distribution != "uniform":
        # the inverse starts with norm.cdf, and onnxruntime has no float64 Erf
        raise ValueError("QuantileTransformer(output_distribution='normal') as a target transformer is not "
                         "supported (its inverse needs a float64 normal CDF); use 'uniform'")
    qs = np.asarray(step.quantiles_, dtype=np.float64)
    ref = np.asarray(step.references_, dtype=np.float64)

    def column(c: Var, j: int) -> str:
        lower = g.op1("Equal", [c.name, g.const(np.float64(0.0), "zero_d")], f"qinv{j}_lower")
        upper = g.op1("Equal", [c.name, g.const(np.float64(1.0), "one_d")], f"qinv{j}_upper")
        val = interp(g, c, ref, qs[:, j], f"qinv{j}")
        val = g.op1("Where", [upper, g.const(np.float64(qs[-1, j]), f"qinv{j}_hi"), val], f"qinv{j}")
        return g.op1("Where", [lower, g.const(np.float64(qs[0, j]), f"qinv{j}_lo"), val], f"qinv{j}")

    return _per_column(g, y, column, "quantile_inverse")
