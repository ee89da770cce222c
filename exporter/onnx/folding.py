"""Trees after a monotone log/exp-based transform: exact by folding the splits into the transform's input.

A tree tests ``float32(z) <= t`` (``z <= t`` for HistGradientBoosting) on ``z = T(x)``. onnxruntime's
``Log``/``Exp`` are not glibc's to the last bit, so where ``z`` lies on a split the graph's ``z`` can fall on
the other side (the threshold sweep finds those rows). But the tree reads ``z`` only through its splits: for
a non-decreasing ``T`` each split is ``x <= b`` for one input double ``b``, found by bisection on sklearn's own
fitted step. The graph then gives the tree, per column, one representative ``z`` per interval between
consecutive ``b`` (sklearn's ``T`` at a point of that interval), NaN where ``T`` answers NaN: the same
branches as sklearn, bit for bit. Anything that does not check out falls back to the plain transform, and
the parity check decides as usual.

The transform converters (transforms.py) register their outputs here; the tree converters in the table are
wrapped by ``folded``, which swaps the registered output for the folded one.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._sklearn_trees import tree_splits
from ._builder import DOUBLE, INT64, Graph, Var
from ._context import Context, Converter

__all__ = ["Monotone", "register", "folded"]


@dataclass(frozen=True)
class Monotone:
    """``out = step.transform(inp)`` column by column, non-decreasing on ``[low[j], inf]`` per column."""

    inp: Var
    out: Var
    transform: Callable[[np.ndarray], np.ndarray]
    low: tuple[float, ...]
    base: tuple[float, ...]  # a valid input value per column (the other columns of a probe row)


_REGISTRY: weakref.WeakKeyDictionary[Graph, dict[str, Monotone]] = weakref.WeakKeyDictionary()


def register(g: Graph, m: Monotone) -> None:
    _REGISTRY.setdefault(g, {})[m.out.name] = m


def _key(x: np.ndarray) -> np.ndarray:
    """Doubles -> int64 keys in the same order (so bisection halves the count of doubles between)."""
    i = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(i < 0, np.int64(-0x8000000000000000) - i, i)


def _unkey(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, dtype=np.int64)
    return np.where(k < 0, np.int64(-0x8000000000000000) - k, k).view(np.float64)


def _cmp(z: np.ndarray, float32: bool) -> np.ndarray:
    # sklearn's trees compare float32(z) with a double threshold: done in float64 on purpose (numpy 2 rules)
    with np.errstate(over="ignore", invalid="ignore"):
        return z.astype(np.float32).astype(np.float64) if float32 else z


_SPANS = (1e308, 1e200, 1e100, 1e50, 1e20, 1e10, 1e6, 1e3)


def _safe_range(m: Monotone, j: int) -> tuple[float, float]:
    """The widest [lo, hi] on which sklearn's step answers finite values for column j (it refuses an
    infinite intermediate, e.g. its scaler after a power transform)."""
    def finite(v: float) -> bool:
        probe = np.asarray(m.base, dtype=np.float64).reshape(1, -1).copy()
        probe[0, j] = v
        try:
            with np.errstate(all="ignore"):
                z = np.asarray(m.transform(probe), dtype=np.float64)[0, j]
        except (ValueError, FloatingPointError, OverflowError):
            return False
        return bool(np.isfinite(z))

    hi = next((v for v in _SPANS if finite(v)), None)
    # from the domain's own end (log1p(-1) is -inf: the next double up), else from far below
    starts = (m.low[j], float(np.nextafter(m.low[j], np.inf)), *(-v for v in _SPANS if -v > m.low[j]))
    lo = next((v for v in starts if finite(v)), None)
    if hi is None or lo is None:
        raise ValueError("no finite range to fold the splits into")
    return float(lo), float(hi)


def _boundaries(m: Monotone, cols: np.ndarray, thr: np.ndarray, float32: bool) -> np.ndarray:
    """Per split: the last input double going left (NaN where the whole domain goes one way)."""
    def left(x: np.ndarray) -> np.ndarray:
        probe = np.tile(np.asarray(m.base, dtype=np.float64), (len(x), 1))
        probe[np.arange(len(x)), cols] = x
        with np.errstate(all="ignore"):
            z = np.asarray(m.transform(probe), dtype=np.float64)[np.arange(len(x)), cols]
        return _cmp(z, float32) <= thr

    ranges = {int(c): _safe_range(m, int(c)) for c in np.unique(cols)}
    lo = np.array([ranges[int(c)][0] for c in cols], dtype=np.float64)
    hi = np.array([ranges[int(c)][1] for c in cols], dtype=np.float64)
    ok = left(lo) & ~left(hi)
    kl, kr = _key(lo), _key(hi)
    for _ in range(70):  # 64 halvings cover every double
        mid = kl // 2 + kr // 2 + (kl % 2 + kr % 2) // 2  # kr - kl may not fit in an int64
        is_left = left(_unkey(mid))
        kl, kr = np.where(is_left, mid, kl), np.where(is_left, kr, mid)
        if np.all(np.abs(kr // 2 - kl // 2) <= 1):
            if np.all(np.abs(kr - kl) <= 1):
                break
    return np.where(ok, _unkey(kl), np.nan)


def _column_plan(m: Monotone, j: int, thr: np.ndarray, b: np.ndarray, float32: bool
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """(sorted boundaries, one representative z per interval) for column j, or None if it does not check out."""
    bounds = np.unique(b[np.isfinite(b)])
    # a point in each interval: the last double of the first, the first double above each boundary
    points = np.concatenate([bounds[:1] if len(bounds) else np.array([m.base[j]]), np.nextafter(bounds, np.inf)])
    probe = np.tile(np.asarray(m.base, dtype=np.float64), (len(points), 1))
    probe[:, j] = points
    with np.errstate(all="ignore"):
        reps = np.asarray(m.transform(probe), dtype=np.float64)[:, j]
    if np.isnan(reps).any():
        return None
    # every representative must go the way its interval goes at every split of this column
    for t, bt in zip(thr, b, strict=True):
        goes_left = _cmp(reps, float32) <= t
        if np.isfinite(bt):
            want = points <= bt
        else:  # the whole domain goes one way: sklearn's own z at any point tells which
            want = np.full(len(points), bool(goes_left[0]))
        if not np.array_equal(goes_left, want):
            return None
    return bounds, reps


def _fold(g: Graph, m: Monotone, est: Any) -> Var | None:
    splits = tree_splits(est)
    if splits is None or not len(splits.feature):
        return None
    feats = np.asarray(splits.feature, dtype=np.int64)
    thr = np.asarray(splits.threshold, dtype=np.float64)
    if feats.max(initial=-1) >= m.out.width:
        return None
    pairs = np.unique(np.stack([feats.astype(np.float64), thr], axis=1), axis=0)
    cols, ts = pairs[:, 0].astype(np.int64), pairs[:, 1]
    b = _boundaries(m, cols, ts, splits.float32)
    out_cols = g.columns(m.out, "fold_z")
    in_cols = g.columns(m.inp, "fold_x")
    parts = []
    for j in range(m.out.width):
        sel = cols == j
        if not sel.any():
            parts.append(out_cols[j])
            continue
        plan = _column_plan(m, j, ts[sel], b[sel], splits.float32)
        if plan is None:
            return None
        bounds, reps = plan
        x = in_cols[j].name
        if len(bounds):
            above = g.op1("Greater", [x, g.const(bounds.reshape(1, -1), "fold_b")], "fold_above")
            region = g.op1("ReduceSum", [g.op1("Cast", [above], "fold_above_i", to=INT64),
                                         g.const(np.array([1], dtype=np.int64), "axis1")], "fold_region", keepdims=1)
            z = g.op1("Gather", [g.const(reps, "fold_reps"), region], "fold_rep", axis=0)
        else:  # one interval: a constant, broadcast by the Where below
            z = g.const(np.float64(reps[0]), "fold_rep0")
        # where sklearn's transform answers NaN (missing input, outside the domain), so does the column
        nan = g.op1("IsNaN", [out_cols[j].name], "fold_nan")
        parts.append(Var(g.op1("Where", [nan, out_cols[j].name, z], "folded"), DOUBLE, 1))
    g.note("a tree after a log/exp-based transform reads it through its splits, folded into the transform's "
           "input by bisection on sklearn's fitted step: exact at every split")
    return g.matrix(parts, "folded_z")


def folded(conv: Converter) -> Converter:
    """A tree converter that folds a registered monotone transform in front of it."""

    @functools.wraps(conv)
    def run(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> Any:
        m = _REGISTRY.get(g, {}).get(x.name) if isinstance(x, Var) else None
        if m is not None:
            try:
                z = _fold(g, m, est)
            except (ValueError, TypeError, AttributeError, IndexError):
                z = None
            if z is not None:
                return conv(g, est, z, ctx)
        return conv(g, est, x, ctx)

    return run
