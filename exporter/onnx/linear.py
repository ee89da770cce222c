"""Converters for linear models and multi-layer perceptrons, in float64 throughout.

Labels come from the same quantity sklearn's ``predict`` uses (the decision
values for linear classifiers, the probabilities for MLPs), so a row on the
boundary gets sklearn's label, not a rounding's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, INT64, Graph, Var
from ._context import Context

__all__ = ["convert_linear_regressor", "convert_logistic_regression", "convert_mlp_classifier",
           "convert_mlp_regressor"]


def _gemm(g: Graph, x: Var, coef: np.ndarray, intercept: Any, hint: str) -> Var:
    """sklearn: ``X @ coef.T + intercept``."""
    w = np.asarray(coef, dtype=np.float64)
    w = w.reshape(1, -1) if w.ndim == 1 else w
    out = g.op1("MatMul", [x.name, g.const(w.T.copy(), f"{hint}_coef")], hint)
    b = np.atleast_1d(np.asarray(intercept, dtype=np.float64)).reshape(1, -1)
    out = g.op1("Add", [out, g.const(b, f"{hint}_intercept")], hint)
    return Var(out, DOUBLE, w.shape[0])


def _first_argmax(g: Graph, scores: str, hint: str) -> str:
    # select_last_index=0: the first maximum wins, as numpy's argmax (sklearn's tie rule)
    return g.op1("ArgMax", [scores], hint, axis=1, keepdims=0, select_last_index=0)


def convert_linear_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    m = g.matrix(x, "lin_in")
    coef = np.asarray(est.coef_, dtype=np.float64)
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise ValueError("multi-output regression is not supported")
    return {"value": _gemm(g, m, coef.reshape(-1), np.ravel(est.intercept_)[:1], "lin")}


def convert_logistic_regression(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    m = g.matrix(x, "lr_in")
    dec = _gemm(g, m, est.coef_, est.intercept_, "lr_dec")
    n_classes = len(est.classes_)
    if n_classes == 2:
        p1 = g.op1("Sigmoid", [dec.name], "lr_p1")
        p0 = g.op1("Sub", [g.const(np.array([[1.0]]), "one"), p1], "lr_p0")
        proba = g.op1("Concat", [p0, p1], "probabilities", axis=1)
        # sklearn: class 1 where decision > 0
        label = g.op1("Cast", [g.op1("Greater", [dec.name, g.const(np.array([[0.0]]), "zero")], "lr_pos")],
                      "lr_label", to=INT64)
        label = g.op1("Squeeze", [label, g.const(np.array([1], dtype=np.int64), "axis1")], "lr_label")
    else:
        multi = getattr(est, "multi_class", "deprecated")
        if multi == "ovr":
            raise ValueError("LogisticRegression(multi_class='ovr') is not supported; use the multinomial default")
        proba = g.op1("Softmax", [dec.name], "probabilities", axis=1)
        label = _first_argmax(g, dec.name, "lr_label")
    return {"probabilities": Var(proba, DOUBLE, n_classes), "label_index": Var(label, INT64, 1)}


_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "identity": "Identity"}


def _mlp_hidden(g: Graph, est: Any, x: Var | list[Var]) -> Var:
    if est.activation not in _ACTIVATIONS:
        raise ValueError(f"MLP activation {est.activation!r} is not supported")
    h = g.matrix(x, "mlp_in")
    last = len(est.coefs_) - 1
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        h = _gemm(g, h, np.asarray(w).T, b, f"mlp_l{i}")
        if i < last:
            h = Var(g.op1(_ACTIVATIONS[est.activation], [h.name], f"mlp_a{i}"), DOUBLE, h.width)
    return h


def convert_mlp_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    out = _mlp_hidden(g, est, x)
    if out.width != 1:
        raise ValueError("multi-output regression is not supported")
    return {"value": out}


def convert_mlp_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    if est.out_activation_ not in ("softmax", "logistic"):
        raise ValueError(f"MLPClassifier output {est.out_activation_!r} is not supported (multi-label?)")
    out = _mlp_hidden(g, est, x)
    if est.out_activation_ == "logistic":
        p1 = g.op1("Sigmoid", [out.name], "mlp_p1")
        p0 = g.op1("Sub", [g.const(np.array([[1.0]]), "one"), p1], "mlp_p0")
        proba = g.op1("Concat", [p0, p1], "probabilities", axis=1)
        # sklearn's LabelBinarizer: class 1 where p > 0.5
        label = g.op1("Cast", [g.op1("Greater", [p1, g.const(np.array([[0.5]]), "half")], "mlp_pos")],
                      "mlp_label", to=INT64)
        label = g.op1("Squeeze", [label, g.const(np.array([1], dtype=np.int64), "axis1")], "mlp_label")
        n = 2
    else:
        proba = g.op1("Softmax", [out.name], "probabilities", axis=1)
        label = _first_argmax(g, proba, "mlp_label")
        n = out.width
    return {"probabilities": Var(proba, DOUBLE, n), "label_index": Var(label, INT64, 1)}
