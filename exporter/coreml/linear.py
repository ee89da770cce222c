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

__all__ = ["convert_linear_regressor", "convert_logistic_regression", "convert_lda", "convert_sgd_classifier",
           "convert_linear_projection", "convert_multinomial_nb", "glm"]


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
    multi = getattr(est, "multi_class", "deprecated")
    if len(est.classes_) > 2 and (multi == "ovr" or getattr(est, "solver", "") == "liblinear"):
        raise CoreMLUnsupported("LogisticRegression with one-vs-rest probabilities (multi_class='ovr' or "
                                "solver='liblinear' on more than two classes) is not supported; use the "
                                "multinomial default")
    return _softmax_classifier(b, est, x, ctx)


def convert_lda(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    # LinearDiscriminantAnalysis: decision X @ coef_.T + intercept_; expit for two classes, softmax beyond;
    # labels as LinearClassifierMixin.predict: the sign for two classes, the first maximum beyond
    return _softmax_classifier(b, est, x, ctx)


def convert_sgd_classifier(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    if est.loss != "log_loss":
        raise CoreMLUnsupported(f"SGDClassifier(loss={est.loss!r}) has no probabilities Core ML can compute "
                                "(loss='log_loss' on two classes is supported)")
    if len(est.classes_) > 2:
        raise CoreMLUnsupported("SGDClassifier on more than two classes normalises one-vs-rest sigmoids, "
                                "which no Core ML model type computes exactly")
    return _softmax_classifier(b, est, x, ctx)


def convert_linear_projection(b: Builder, est: Any, x: Any, ctx: Context) -> Var:
    """PCA / IncrementalPCA / TruncatedSVD ``transform``: ``X @ components_.T - mean_ @ components_.T``, then
    PCA's whitening ``/ sqrt(explained_variance_)`` (a Scaler: the division becomes a product, an ulp apart)."""
    xa = b.vectorize(x)
    comp = np.asarray(est.components_, dtype=np.float64)
    if comp.shape[1] != xa.width:
        raise ValueError(f"{comp.shape[1]} components' columns for {xa.width} input columns")
    mean = getattr(est, "mean_", None)
    offsets = -(np.asarray(mean, dtype=np.float64).reshape(1, -1) @ comp.T).reshape(-1) if mean is not None \
        else np.zeros(comp.shape[0])
    out = glm(b, xa, comp, offsets, b.var("projection", ARRAY, comp.shape[0]))
    if getattr(est, "whiten", False):
        sd = np.sqrt(np.asarray(est.explained_variance_, dtype=np.float64))
        sd[sd < np.finfo(sd.dtype).eps] = np.finfo(sd.dtype).eps  # sklearn's own clipping
        white = b.var("whitened", ARRAY, comp.shape[0])
        m = b.model([out], [white], "whiten")
        m.scaler.shiftValue.extend([0.0] * len(sd))
        m.scaler.scaleValue.extend((1.0 / sd).tolist())
        return white
    return out


def convert_multinomial_nb(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    """MultinomialNB: the joint log-likelihood ``X @ feature_log_prob_.T + class_log_prior_`` is linear in X;
    predict_proba is ``exp(jll - logsumexp(jll))``, the softmax of it; the label its first maximum."""
    xa = b.vectorize(x)
    flp = np.asarray(est.feature_log_prob_, dtype=np.float64)
    if flp.shape[1] != xa.width:
        raise ValueError(f"{flp.shape[1]} feature log-probabilities for {xa.width} input columns")
    jll = glm(b, xa, flp, np.asarray(est.class_log_prior_, dtype=np.float64), b.var("nb_jll", ARRAY, len(flp)))
    return {"label": argmax_label(b, jll, est.classes_, ctx.outputs["label"]),
            "probabilities": softmax(b, jll, ctx.outputs["probabilities"])}


def _softmax_classifier(b: Builder, est: Any, x: Any, ctx: Context) -> dict[str, Var]:
    xa = b.vectorize(x)
    classes = est.classes_
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    intercept = np.ravel(np.asarray(est.intercept_, dtype=np.float64))
    k = len(classes)
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
