"""Normalizer, as sklearn's ``normalize`` does it on dense rows, in float64.

Why not skl2onnx's: it divides by the norm as it is, so a row of zeros (or one whose norm is below
``10 * eps``) becomes NaN where sklearn leaves it unscaled (``_handle_zeros_in_scale``): measured by the
census's all-zeros row (docs/coverage.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, Graph, Var
from ._context import Context

__all__ = ["convert_normalizer"]


def convert_normalizer(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var:
    m = g.matrix(x, "norm_in")
    axes = g.const(np.array([1], dtype=np.int64), "axis1")
    if step.norm == "l2":
        norm = g.op1("Sqrt", [g.op1("ReduceSumSquare", [m.name, axes], "norm_sq", keepdims=1)], "norm")
    elif step.norm == "l1":
        norm = g.op1("ReduceSum", [g.op1("Abs", [m.name], "norm_abs"), axes], "norm", keepdims=1)
    elif step.norm == "max":
        norm = g.op1("ReduceMax", [g.op1("Abs", [m.name], "norm_abs"), axes], "norm", keepdims=1)
    else:
        raise ValueError(f"Normalizer(norm={step.norm!r}) is not supported")
    tiny = g.op1("Less", [norm, g.const(np.array([[10 * np.finfo(np.float64).eps]]), "norm_eps")], "norm_tiny")
    safe = g.op1("Where", [tiny, g.const(np.array([[1.0]]), "one"), norm], "norm_safe")
    ctx.origin = None
    return Var(g.op1("Div", [m.name, safe], "normalized"), DOUBLE, m.width)
