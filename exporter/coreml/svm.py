"""Core ML converter for support vector regression: a ``SupportVectorRegressor``.

The format (SVM.proto) states the kernels: linear ``x . x'``, RBF ``exp(-gamma ||x - x'||^2)``, polynomial
``(gamma x . x' + c)^degree`` and sigmoid ``tanh(gamma x . x' + c)``, the same as libsvm's, which sklearn's SVR
runs. The regressor's output is libsvm's decision value ``sum(alpha_i K(x, sv_i)) - rho`` (coremltools' own
SVR converter writes ``rho = -intercept_`` for it). Classifiers (SVC) are not written: Core ML's classifier
picks its label from its pairwise-coupled probabilities, while sklearn's ``predict`` votes on the decision
values, and the format does not say how ties of votes or probabilities fall.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, Builder, CoreMLUnsupported, Var
from ._context import Context

__all__ = ["convert_svr", "set_kernel"]


def set_kernel(kernel: Any, est: Any) -> None:
    """The estimator's kernel in the format's Kernel message; the kernels the format has, nothing else."""
    name = est.kernel
    if name == "linear":
        kernel.linearKernel.SetInParent()
    elif name == "rbf":
        kernel.rbfKernel.gamma = float(est._gamma)
    elif name == "poly":
        kernel.polyKernel.gamma = float(est._gamma)
        kernel.polyKernel.c = float(est.coef0)
        kernel.polyKernel.degree = int(est.degree)
    elif name == "sigmoid":
        kernel.sigmoidKernel.gamma = float(est._gamma)
        kernel.sigmoidKernel.c = float(est.coef0)
    else:
        raise CoreMLUnsupported(f"kernel={name!r}: Core ML has the linear, rbf, poly and sigmoid kernels only")


def convert_svr(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    xa = b.vectorize(x)
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    if sv.ndim != 2 or sv.shape[1] != xa.width:
        raise ValueError(f"support vectors of {sv.shape[-1]} values for {xa.width} input columns")
    out = Var(ctx.outputs["value"], DOUBLE)
    m = b.model([xa], [out], "svr")
    m.description.predictedFeatureName = out.name
    s = m.supportVectorRegressor
    set_kernel(s.kernel, est)
    for row in sv:
        s.denseSupportVectors.vectors.add().values.extend(row.tolist())
    s.coefficients.alpha.extend(np.asarray(est.dual_coef_, dtype=np.float64).reshape(-1).tolist())
    s.rho = float(-np.ravel(est.intercept_)[0])
    return {"value": out}
