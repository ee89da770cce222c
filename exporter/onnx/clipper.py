"""ONNX converter for skedge's own ``OutlierClipper`` (``skedge.trainer.features``).

The worked example of a custom step: a converter reads the fitted attributes
(``lower_``, ``upper_``) and writes the same arithmetic as ``transform``:
``np.clip`` in float64, NaN passed through (Clip keeps NaN, as numpy does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, Graph, Var
from ._context import Context

__all__ = ["convert_outlier_clipper"]


def convert_outlier_clipper(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var:
    m = g.matrix(x, "clip_in")
    lo = g.const(np.asarray(step.lower_, dtype=np.float64).reshape(1, -1), "clip_lo")
    hi = g.const(np.asarray(step.upper_, dtype=np.float64).reshape(1, -1), "clip_hi")
    # np.clip(x, lo, hi) == min(max(x, lo), hi); Max/Min broadcast per column where Clip takes scalars only.
    # NaN: onnxruntime's Max/Min return NaN when either side is NaN, as np.clip does.
    out = g.op1("Min", [g.op1("Max", [m.name, lo], "clip_max"), hi], "clipped")
    return Var(out, DOUBLE, m.width)
