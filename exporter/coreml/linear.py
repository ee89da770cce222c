"""Core ML converters for linear models: a ``GLMRegressor`` computes sklearn's decision values.

The decision values ``X @ coef.T + intercept`` are one ``GLMRegressor`` output
each (in double). Probabilities come from them through the softmax head and
labels through sklearn's own rule on the same decision values (``> 0`` for two
classes, the first maximum otherwise), so a row on the boundary gets sklearn's
label, not a rounding's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import ARRAY, DOUBLE, Builder, CoreMLUnsupported, Var
from ._context import Context
from ._proto import proto
from .heads import argmax_label, softmax, threshold_label

__all__ = ["convert_linear_regressor", "convert_logistic_regression", "glm"]


def glm(b: Builder, x: Var, weights: np.ndarray, offsets: np.ndarray, out: Var) -> Var:
    """``out[i] = weights[i] . x + offsets[i]`` (a ``GLMRegressor`` without post-transform)."""
    m = b.model([x], [out], "glm")
    m.description.predictedFeatureName = out.name
    g = m.glmRegressor
    for row, off in zip(np.atleast_2d(weights), np.atleast_1d(offsets), strict=True):
        g.weights.add().value.extend(np.asarray(row, dtype=np.float64).tolist())
        g.offset.append(float(off))
    g.postEvaluationTransform = proto().GLMRegressor_pb2.GLMRegressor.NoTransform
    return out


def convert_linear_regressor(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    xa = b.vectorize(x)
    coef = np.asarray(est.coef_, dtype=np.float64)
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise CoreMLUnsupported("multi-output regression is not supported")
    coef = coef.reshape(-1)
    if coef.shape[0] != xa.width:
        raise ValueError(f"{coef.shape[0]} coefficients for {xa.width} input columns")
    out = Var(ctx.outputs["value"], DOUBLE)
    return {"value": glm(b, xa, coef.reshape(1, -1), np.ravel(est.intercept_)[:1], out)}


def convert_logistic_regression(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    xa = b.vectorize(x)
    classes = est.classes_
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    intercept = np.ravel(np.asarray(est.intercept_, dtype=np.float64))
    k = len(classes)
    multi = getattr(est, "multi_class", "deprecated")
    if k > 2 and (multi == "ovr" or getattr(est, "solver", "") == "liblinear"):
        raise CoreMLUnsupported("LogisticRegression with one-vs-rest probabilities (multi_class='ovr' or "
                                "solver='liblinear' on more than two classes) is not supported; use the "
                                "multinomial default")
    if coef.shape[1] != xa.width:
        raise ValueError(f"{coef.shape[1]} coefficients for {xa.width} input columns")
    if k == 2:
        # [0, decision]: the softmax of it is [1 - sigmoid(d), sigmoid(d)], sklearn's binary probabilities
        weights = np.vstack([np.zeros(coef.shape[1]), coef[0]])
        offsets = np.array([0.0, intercept[0]])
    else:
        weights, offsets = coef, intercept
    scores = glm(b, xa, weights, offsets, b.var("lr_decision", ARRAY, k))
    proba = softmax(b, scores, ctx.outputs["probabilities"])
    if k == 2:  # sklearn: classes_[1] where decision > 0
        label = threshold_label(b, scores, 1, ">", 0.0, classes, ctx.outputs["label"])
    else:  # sklearn: argmax of the decision values
        label = argmax_label(b, scores, classes, ctx.outputs["label"])
    return {"label": label, "probabilities": proba}
