"""Elementwise float64 functions ONNX lacks or computes less exactly than numpy, built from its ops.

numpy's ``log1p``/``expm1`` are accurate to an ulp where ``Log(1 + x)``/``Exp(x) - 1`` lose every digit
(x = 1e-12), ``np.interp`` follows a binary search whose index rule we reproduce with a count, and
``scipy.stats.norm.ppf`` (ONNX has no Erfinv) is Wichura's AS241, accurate to about 1e-16 relative.
"""

from __future__ import annotations

import numpy as np

from ._builder import INT64, Graph, Var

__all__ = ["log1p", "expm1", "interp", "ndtri", "where_nan"]


def _c(g: Graph, v: float, hint: str = "c") -> str:
    return g.const(np.float64(v), hint)


def log1p(g: Graph, x: str, hint: str = "log1p") -> str:
    """log1p(x) = log(u) * (x / (u - 1)) with u = 1 + x (Goldberg/Kahan), x where u == 1."""
    one = _c(g, 1.0, "one_d")
    u = g.op1("Add", [x, one], f"{hint}_u")
    um1 = g.op1("Sub", [u, one], f"{hint}_um1")
    # log(u) * (x / (u - 1)): the quotient is near 1, so a huge x does not overflow the product
    ratio = g.op1("Mul", [g.op1("Log", [u], f"{hint}_log"), g.op1("Div", [x, um1], f"{hint}_q")], f"{hint}_r")
    tiny = g.op1("Equal", [u, one], f"{hint}_tiny")
    out = g.op1("Where", [tiny, x, ratio], hint)
    # u = inf: inf * x / inf is NaN where numpy answers inf
    return g.op1("Where", [g.op1("IsInf", [u], f"{hint}_inf"), u, out], hint)


def expm1(g: Graph, x: str, hint: str = "expm1") -> str:
    """expm1(x) = (u - 1) * (x / log(u)) with u = exp(x) (Kahan); x where u == 1, -1 where u - 1 == -1."""
    one = _c(g, 1.0, "one_d")
    u = g.op1("Exp", [x], f"{hint}_u")
    um1 = g.op1("Sub", [u, one], f"{hint}_um1")
    ratio = g.op1("Mul", [um1, g.op1("Div", [x, g.op1("Log", [u], f"{hint}_log")], f"{hint}_q")], f"{hint}_r")
    out = g.op1("Where", [g.op1("Equal", [u, one], f"{hint}_tiny"), x, ratio], hint)
    minus_one = _c(g, -1.0, "minus_one_d")
    out = g.op1("Where", [g.op1("Equal", [um1, minus_one], f"{hint}_low"), minus_one, out], hint)
    # u = inf: (inf * x) / inf is NaN where numpy answers inf
    return g.op1("Where", [g.op1("IsInf", [u], f"{hint}_inf"), u, out], hint)


def where_nan(g: Graph, x: str, value: str, hint: str) -> str:
    """``value`` where ``x`` is not NaN, NaN (x itself) where it is."""
    return g.op1("Where", [g.op1("IsNaN", [x], f"{hint}_isnan"), x, value], hint)


def interp(g: Graph, x: Var, xp: np.ndarray, fp: np.ndarray, hint: str = "interp") -> str:
    """``np.interp(x, xp, fp)`` for a one-column double ``x``, NaN passed through.

    numpy finds ``j``, the last index with ``xp[j] <= x`` (repeated ``xp`` included), then answers
    ``slope[j] * (x - xp[j]) + fp[j]``, with ``fp[j]`` where ``x == xp[j]`` and the ends held flat.
    ``j`` is the count of ``xp <= x`` minus one: the same index, without a search.
    """
    xp = np.asarray(xp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    k = len(xp)
    if k < 2:
        raise ValueError("interpolation needs two reference points")
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = (fp[1:] - fp[:-1]) / (xp[1:] - xp[:-1])
    le = g.op1("LessOrEqual", [g.const(xp.reshape(1, -1), f"{hint}_xp"), x.name], f"{hint}_le")
    cnt = g.op1("ReduceSum", [g.op1("Cast", [le], f"{hint}_le_i", to=INT64),
                              g.const(np.array([1], dtype=np.int64), "axis1")], f"{hint}_cnt", keepdims=1)
    j = g.op1("Sub", [cnt, g.const(np.int64(1), "one_i")], f"{hint}_j")
    jc = g.op1("Clip", [j, g.const(np.int64(0), "zero_i"), g.const(np.int64(k - 2), f"{hint}_kmax")], f"{hint}_jc")
    jc1 = g.op1("Add", [jc, g.const(np.int64(1), "one_i")], f"{hint}_jc1")

    def take(arr: np.ndarray, idx: str, name: str) -> str:
        return g.op1("Gather", [g.const(arr, f"{hint}_{name}"), idx], f"{hint}_{name}_j", axis=0)

    slope = take(np.append(slopes, 0.0), jc, "slope")
    xj, fj = take(xp, jc, "xpj"), take(fp, jc, "fpj")
    xj1, fj1 = take(xp, jc1, "xpj1"), take(fp, jc1, "fpj1")
    val = g.op1("Add", [g.op1("Mul", [slope, g.op1("Sub", [x.name, xj], f"{hint}_dx")], f"{hint}_m"), fj], hint)
    # numpy: "if we get nan in one direction, try the other", then fp[j] when both ends are equal
    alt = g.op1("Add", [g.op1("Mul", [slope, g.op1("Sub", [x.name, xj1], f"{hint}_dx1")], f"{hint}_m1"), fj1],
                hint)
    val = g.op1("Where", [g.op1("IsNaN", [val], f"{hint}_nan1"), alt, val], hint)
    same = g.op1("And", [g.op1("IsNaN", [val], f"{hint}_nan2"), g.op1("Equal", [fj, fj1], f"{hint}_flat")],
                 f"{hint}_flatnan")
    val = g.op1("Where", [same, fj, val], hint)
    val = g.op1("Where", [g.op1("Equal", [x.name, xj], f"{hint}_at"), fj, val], hint)
    # below xp[0]: fp[0]; at or above xp[-1]: fp[-1]
    below = g.op1("Less", [j, g.const(np.int64(0), "zero_i")], f"{hint}_below")
    val = g.op1("Where", [below, g.const(np.float64(fp[0]), f"{hint}_left"), val], hint)
    above = g.op1("Equal", [j, g.const(np.int64(k - 1), f"{hint}_last")], f"{hint}_above")
    val = g.op1("Where", [above, g.const(np.float64(fp[-1]), f"{hint}_right"), val], hint)
    return where_nan(g, x.name, val, hint)


# Wichura, "Algorithm AS 241: The percentage points of the normal distribution" (PPND16), 1988.
_A = [3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3, 1.3731693765509461125e4,
      4.5921953931549871457e4, 6.7265770927008700853e4, 3.3430575583588128105e4, 2.5090809287301226727e3]
_B = [1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3, 2.1213794301586595867e4,
      3.9307895800092710610e4, 2.8729085735721942674e4, 5.2264952788528545610e3]
_C = [1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0, 3.64784832476320460504e0,
      1.27045825245236838258e0, 2.41780725177450611770e-1, 2.27238449892691845833e-2, 7.74545014278341407640e-4]
_D = [1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
      1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4, 1.05075007164441684324e-9]
_E = [6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0, 2.96560571828504891230e-1,
      2.65321895265761230930e-2, 1.24266094738807843860e-3, 2.71155556874348757815e-5, 2.01033439929228813265e-7]
_F = [1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
      7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7, 2.04426310338993978564e-15]


def _horner(g: Graph, r: str, coefs: list[float], hint: str) -> str:
    acc = _c(g, coefs[-1], f"{hint}_c")
    for c in reversed(coefs[:-1]):
        acc = g.op1("Add", [g.op1("Mul", [acc, r], f"{hint}_m"), _c(g, c, f"{hint}_c")], hint)
    return acc


def ndtri(g: Graph, p: str, hint: str = "ndtri") -> str:
    """The standard normal quantile of ``p`` (-inf at 0, inf at 1, NaN outside [0, 1] and for NaN)."""
    q = g.op1("Sub", [p, _c(g, 0.5, "half_d")], f"{hint}_q")
    # central region |q| <= 0.425
    r = g.op1("Sub", [_c(g, 0.180625, f"{hint}_k"), g.op1("Mul", [q, q], f"{hint}_q2")], f"{hint}_r")
    central = g.op1("Div", [g.op1("Mul", [q, _horner(g, r, _A, f"{hint}_a")], f"{hint}_qa"),
                            _horner(g, r, _B, f"{hint}_b")], f"{hint}_central")
    # tails: r = sqrt(-log(min(p, 1 - p)))
    one = _c(g, 1.0, "one_d")
    neg = g.op1("Less", [q, _c(g, 0.0, "zero_d")], f"{hint}_neg")
    tail_p = g.op1("Where", [neg, p, g.op1("Sub", [one, p], f"{hint}_1mp")], f"{hint}_tp")
    # keep Log away from 0 and negatives in the lanes that Where throws away
    safe = g.op1("Where", [g.op1("Greater", [tail_p, _c(g, 0.0, "zero_d")], f"{hint}_pos"), tail_p,
                           _c(g, 0.5, "half_d")], f"{hint}_safe")
    rt = g.op1("Sqrt", [g.op1("Neg", [g.op1("Log", [safe], f"{hint}_log")], f"{hint}_nlog")], f"{hint}_rt")
    r1 = g.op1("Sub", [rt, _c(g, 1.6, f"{hint}_k16")], f"{hint}_r1")
    mid = g.op1("Div", [_horner(g, r1, _C, f"{hint}_cc"), _horner(g, r1, _D, f"{hint}_dd")], f"{hint}_mid")
    r2 = g.op1("Sub", [rt, _c(g, 5.0, f"{hint}_k5")], f"{hint}_r2")
    far = g.op1("Div", [_horner(g, r2, _E, f"{hint}_ee"), _horner(g, r2, _F, f"{hint}_ff")], f"{hint}_far")
    tail = g.op1("Where", [g.op1("LessOrEqual", [rt, _c(g, 5.0, f"{hint}_k5")], f"{hint}_le5"), mid, far],
                 f"{hint}_tail")
    tail = g.op1("Where", [neg, g.op1("Neg", [tail], f"{hint}_ntail"), tail], f"{hint}_stail")
    is_central = g.op1("LessOrEqual", [g.op1("Abs", [q], f"{hint}_absq"), _c(g, 0.425, f"{hint}_k425")],
                       f"{hint}_isc")
    out = g.op1("Where", [is_central, central, tail], hint)
    inf = np.float64(np.inf)
    out = g.op1("Where", [g.op1("Equal", [p, _c(g, 0.0, "zero_d")], f"{hint}_p0"), _c(g, -inf, "minus_inf"), out],
                hint)
    out = g.op1("Where", [g.op1("Equal", [p, one], f"{hint}_p1"), _c(g, inf, "plus_inf"), out], hint)
    bad = g.op1("Or", [g.op1("Less", [p, _c(g, 0.0, "zero_d")], f"{hint}_lt0"),
                       g.op1("Greater", [p, one], f"{hint}_gt1")], f"{hint}_bad")
    out = g.op1("Where", [bad, _c(g, np.nan, "nan_d"), out], hint)
    return where_nan(g, p, out, hint)

