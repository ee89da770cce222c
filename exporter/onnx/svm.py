"""Support vector regression in double: ``SVR`` and ``NuSVR``.

onnxruntime has no double kernel for ``SVMRegressor``, so skl2onnx's converter runs in float32 and was measured
1.7e-5 to 4.5e-4 relative off sklearn (linear and polynomial kernels): over the bound. The decision value is
written here with double MatMul and elementwise ops, as libsvm computes it: ``sum(dual_coef_i K(x, sv_i)) + b``
(``intercept_`` is libsvm's ``-rho``), with the kernels linear ``x . sv``, RBF ``exp(-gamma ||x - sv||^2)``,
polynomial ``(gamma x . sv + coef0)^degree`` and sigmoid ``tanh(gamma x . sv + coef0)``.

For RBF, ``||x - sv||^2`` is ``||x||^2 - 2 x . sv + ||sv||^2`` (a [rows, vectors] matrix, not the [rows, vectors,
features] difference tensor, which would hold 200 MB for one 8,192-row chunk of 300 vectors of 10 features);
the rounding this adds is relative to ``||x||^2`` and stays far inside the bound, which the parity check proves
for each model on its golden rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, Graph, Var
from ._context import Context

__all__ = ["convert_svr"]


def _kernel(g: Graph, est: Any, x: str, sv: np.ndarray) -> str:
    dots = g.op1("MatMul", [x, g.const(sv.T.copy(), "svr_sv_t")], "svr_dots")
    gamma = float(est._gamma)
    if est.kernel == "linear":
        return dots
    if est.kernel == "rbf":
        xx = g.op1("ReduceSumSquare", [x, g.const(np.array([1], dtype=np.int64), "svr_axis")], "svr_xx",
                   keepdims=1)
        vv = g.const((sv * sv).sum(axis=1)[None, :], "svr_vv")
        two = g.op1("Mul", [dots, g.const(np.float64(2.0), "svr_two")], "svr_2dots")
        d2 = g.op1("Add", [g.op1("Sub", [xx, two], "svr_d"), vv], "svr_d2")
        # rounding can leave a tiny negative distance for x == sv: libsvm's squared differences are never below 0
        d2 = g.op1("Max", [d2, g.const(np.float64(0.0), "svr_zero")], "svr_d2pos")
        return g.op1("Exp", [g.op1("Mul", [d2, g.const(np.float64(-gamma), "svr_gamma")], "svr_arg")], "svr_k")
    inner = g.op1("Add", [g.op1("Mul", [dots, g.const(np.float64(gamma), "svr_gamma")], "svr_gdot"),
                          g.const(np.float64(est.coef0), "svr_coef0")], "svr_inner")
    if est.kernel == "poly":
        return g.op1("Pow", [inner, g.const(np.float64(est.degree), "svr_degree")], "svr_k")
    if est.kernel == "sigmoid":
        return g.op1("Tanh", [inner], "svr_k")
    raise ValueError(f"kernel={est.kernel!r}: skedge converts the linear, rbf, poly and sigmoid kernels")


def convert_svr(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    m = g.matrix(x, "svr_x")
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    if sv.ndim != 2 or sv.shape[1] != m.width:
        raise ValueError(f"support vectors of {sv.shape[-1]} values for {m.width} input columns")
    k = _kernel(g, est, g.cast(m, DOUBLE, "svr_in").name, sv)
    coef = np.asarray(est.dual_coef_, dtype=np.float64).reshape(-1, 1)
    value = g.op1("Add", [g.op1("MatMul", [k, g.const(coef, "svr_coef")], "svr_sum"),
                          g.const(np.asarray(est.intercept_, dtype=np.float64).reshape(1, 1), "svr_b")], "svr_value")
    ctx.origin = None
    return {"value": Var(value, DOUBLE, 1)}
