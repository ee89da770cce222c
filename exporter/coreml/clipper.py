"""Core ML converter for skedge's own ``OutlierClipper`` (``skedge.trainer.features``).

``np.minimum(np.maximum(X, lower_), upper_)`` per column. The classic Core ML
models have no clip, so this is a small ``NeuralNetwork``: two
``LoadConstantLayer`` (the bounds, shape ``[C, 1, 1]``), a ``MaxLayer`` and a
``MinLayer`` ("the elementwise maximum/minimum over the inputs"). Max and min
are exact; the bounds, stored as float32 weights, are the one rounding:

* in front of trees it changes nothing: sklearn's trees see
  ``float32(clip(x, lo, hi))``, and float32 rounding is monotonic, so that is
  ``clip(float32(x), float32(lo), float32(hi))`` exactly (and the trees'
  thresholds are written for float32 inputs, see ``trees.py``);
* in front of linear models a value clipped to a bound differs from sklearn's
  by that bound's float32 rounding (relative 6e-8).

The format leaves max/min of NaN open, so a clipper is exported only where its
columns cannot be missing (after an imputer, or on non-nullable inputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import ARRAY, Builder, CoreMLUnsupported, Var
from ._context import Context

__all__ = ["convert_outlier_clipper", "clip_array"]


def clip_array(b: Builder, x: Var, lower: np.ndarray, upper: np.ndarray, hint: str) -> Var:
    """``min(max(x, lower), upper)`` element by element, as a four-layer ``NeuralNetwork``."""
    if x.nan:
        raise CoreMLUnsupported("clipping columns that may be missing: Core ML's max/min layers do not define "
                                "NaN; impute before clipping")
    out = b.var(hint, ARRAY, x.width)
    m = b.model([x], [out], hint)
    nn = m.neuralNetwork
    lo_name, hi_name, mid_name = b.name(f"{hint}_lower"), b.name(f"{hint}_upper"), b.name(f"{hint}_max")
    for name, values in ((lo_name, lower), (hi_name, upper)):
        layer = nn.layers.add()
        layer.name = name
        layer.output.append(name)
        layer.loadConstant.shape.extend([x.width, 1, 1])
        layer.loadConstant.data.floatValue.extend(np.asarray(values, dtype=np.float32).tolist())
    layer = nn.layers.add()
    layer.name = mid_name
    layer.input.extend([x.name, lo_name])
    layer.output.append(mid_name)
    layer.max.SetInParent()
    layer = nn.layers.add()
    layer.name = out.name
    layer.input.extend([mid_name, hi_name])
    layer.output.append(out.name)
    layer.min.SetInParent()
    return out


def convert_outlier_clipper(b: Builder, step: Any, x: Any, ctx: Context) -> Var:
    xa = b.vectorize(x, "clip_in")
    lower = np.asarray(step.lower_, dtype=np.float64)
    upper = np.asarray(step.upper_, dtype=np.float64)
    if len(lower) != xa.width:
        raise ValueError(f"{len(lower)} clip bounds for {xa.width} columns")
    return clip_array(b, xa, lower, upper, "clipped")
