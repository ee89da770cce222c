"""Golden vectors and the export sweep: the rows every exported target must answer like sklearn.

Two sets, built together:

* the **sweep** (``Sweep``), answered by sklearn and by every target at export time: every split of
  every tree, placed in input space by inverting the fitted preprocessing and probed on both sides
  of the exact boundary (the last double that goes left, the first that goes right, and their float32
  neighbours), on base rows drawn from the data that reach that split; plus the golden rows below.
* the **golden rows** (``golden.json``), a bounded sample of it that ships with the bundle so that
  ``verify`` on a phone stays fast: mixed rows (by default every field drawn from a different holdout
  row, so no training record is shipped whole; real holdout rows only with ``golden="holdout"``),
  edge rows (all missing, unseen category, minimum, maximum, far outside the training range), a
  sample of the threshold rows, and rows on probability ties.

Inverting the preprocessing: each column the estimator sees is traced to the one input feature it
moves with, on a grid over that feature's range (a column moved by two features is not inverted).
The boundary of a split ``float32(column) <= t`` (HistGradientBoosting: ``column <= t``) is then
found by bisection over the doubles themselves, on the fitted sklearn steps: exact for affine and for
any monotone step, without knowing the step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from skedge.runtime._schema import Schema, is_missing

from ._schema import frame_for_sklearn, rows_to_json
from ._sklearn_trees import Splits, float32_split, tree_splits

__all__ = ["GOLDEN_FORMAT", "GOLDEN_MODES", "Sweep", "build_golden", "build_sweep", "reference_outputs"]

GOLDEN_FORMAT = 1
GOLDEN_MODES = ("mixed", "holdout")
MAX_HOLDOUT = 200
MAX_GOLDEN_THRESHOLD_ROWS = 1500  # of the sweep's threshold rows, the ones golden.json keeps
MAX_SWEEP_ROWS = 400_000  # beyond this the sweep samples splits (and says so): memory, not accuracy
# up to this many threshold rows every boundary gets four probes (both sides, in float64 and float32);
# above it the two that decide it (the last double on the left, the first on the right), so that a
# 500-tree forest is still swept whole in its export time budget
FULL_PROBE_ROWS = 40_000
UNSEEN = "__skedge_unseen__"
_GRID = 65


@contextmanager
def _quiet_numerics() -> Iterator[None]:
    # edge rows (far outside the training range) may overflow or leave a step's domain in the user's
    # own pipeline; sklearn's answer (inf, NaN) is still the reference the export must match
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def reference_outputs(pipeline: Any, rows: list[dict[str, Any]], schema: Schema) -> dict[str, Any]:
    """What sklearn answers for ``rows``, keyed by output kind."""
    with _quiet_numerics():
        return _reference_frame(pipeline, frame_for_sklearn(rows, schema), schema)


def _reference_frame(pipeline: Any, frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    if schema.task == "classification":
        if "probabilities" not in schema.outputs:  # no predict_proba in sklearn (LinearSVC, hard voting)
            return {"label": _labels(pipeline.predict(frame))}
        return {"label": _labels(pipeline.predict(frame)), "probabilities": pipeline.predict_proba(frame).tolist()}
    if schema.task == "regression":
        value = np.asarray(pipeline.predict(frame), dtype=np.float64)
        # one value per row, or (multi-output) one row of values per row
        return {"value": (value.reshape(len(frame), -1) if value.ndim == 2 and value.shape[1] > 1
                          else value.ravel()).tolist()}
    return {"label": [int(v) for v in pipeline.predict(frame)],
            "score": np.asarray(pipeline.decision_function(frame), dtype=np.float64).ravel().tolist()}


def _labels(values: Any) -> list[Any]:
    # as Python values of the classes' own type (1.0 stays a float: the model answers 1.0, not 1)
    return list(np.asarray(values).tolist())


def _predictable(pipeline: Any, rows: list[dict[str, Any]], schema: Schema) -> list[dict[str, Any]]:
    """Drop rows sklearn itself refuses (an unknown category under handle_unknown='error')."""
    with _quiet_numerics():
        try:
            pipeline.predict(frame_for_sklearn(rows, schema))
            return rows
        except ValueError:
            pass
        keep = []
        for r in rows:
            try:
                pipeline.predict(frame_for_sklearn([r], schema))
            except ValueError:
                continue
            keep.append(r)
        return keep


# empty, whitespace, long, non-ASCII (accents, CJK, an astral emoji, a combining mark), a number's text
EDGE_STRINGS = ("", " ", "\t", "x" * 200, "café", "日本語", "\U0001f427", "e\u0301", "0", "None", "NaN")


def _edge_rows(base: dict[str, Any], schema: Schema) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    all_missing = {f.name: (None if f.nullable else base[f.name]) for f in schema.features}
    out.append(("edge:all-missing", all_missing))
    for f in schema.features:
        if f.kind == "category":
            if schema.unknown_categories.get(f.name) != "error":
                out.append((f"edge:unseen-category:{f.name}", {**base, f.name: UNSEEN}))
            for c in (f.categories or ())[:20]:
                out.append((f"edge:category:{f.name}", {**base, f.name: c}))
            if f.nullable:
                out.append((f"edge:missing:{f.name}", {**base, f.name: None}))
            # strings that are not missing (issue 11.4): sklearn answers each as a category; rows it refuses
            # (handle_unknown="error") are dropped by _predictable
            first = (f.categories or ("a",))[0]
            for text in EDGE_STRINGS + (f" {first}", f"{first} ", first.upper(), first.lower()):
                out.append((f"edge:string:{f.name}", {**base, f.name: text}))
            continue
        lo, hi = f.stats.get("min"), f.stats.get("max")
        if lo is None or hi is None:
            continue
        span = max(hi - lo, 1.0)
        cast = (lambda v: int(round(v))) if f.kind == "integer" else float
        if f.kind == "boolean":
            out += [(f"edge:bool:{f.name}", {**base, f.name: v}) for v in (False, True)]
            continue
        out.append((f"edge:min:{f.name}", {**base, f.name: cast(lo)}))
        out.append((f"edge:max:{f.name}", {**base, f.name: cast(hi)}))
        out.append((f"edge:far-below:{f.name}", {**base, f.name: cast(lo - 10 * span)}))
        out.append((f"edge:far-above:{f.name}", {**base, f.name: cast(hi + 10 * span)}))
        if f.nullable:
            out.append((f"edge:missing:{f.name}", {**base, f.name: None}))
    lows = {f.name: (f.stats["min"] if f.kind == "number" else base[f.name]) for f in schema.features
            if "min" in f.stats}
    highs = {f.name: (f.stats["max"] if f.kind == "number" else base[f.name]) for f in schema.features
             if "max" in f.stats}
    out.append(("edge:all-min", {**base, **lows}))
    out.append(("edge:all-max", {**base, **highs}))
    return out


# -- rows without records --------------------------------------------------------------------------
def _row_key(row: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(None if is_missing(row.get(n)) else row.get(n) for n in names)


def _mixed_rows(holdout: list[dict[str, Any]], schema: Schema, rng: np.random.Generator,
                records: set[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """As many rows as the holdout, each field drawn from a different holdout row, none from the row of
    the same position: realistic values, no record whole. A row that still equals a record (a table of
    few distinct values) is left out."""
    n, names = len(holdout), schema.names
    out = []
    for i in range(n):
        if n > len(names):
            picks = rng.choice(n - 1, size=len(names), replace=False)
        else:
            picks = rng.integers(0, max(n - 1, 1), size=len(names))
        picks = np.where(picks >= i, picks + 1, picks) if n > 1 else np.zeros(len(names), dtype=np.int64)
        row = {name: holdout[int(p)][name] for name, p in zip(names, picks, strict=True)}
        if _row_key(row, names) not in records:
            out.append(row)
    return out


def _complete(row: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """A probe starts from a complete row: a missing value would hide its feature from the probe."""
    row = dict(row)
    for f in schema.features:
        if row.get(f.name) is None:
            if f.kind == "category" and f.categories:
                row[f.name] = f.categories[0]
            elif "mean" in f.stats:
                row[f.name] = int(round(f.stats["mean"])) if f.kind in ("integer", "boolean") else f.stats["mean"]
    return row


# -- the threshold sweep ---------------------------------------------------------------------------
_SIGN = np.int64(-0x8000000000000000)


def _to_key(x: np.ndarray) -> np.ndarray:
    """Doubles to int64 keys in the same order (consecutive doubles: consecutive keys; -0.0 and 0.0 one key)."""
    i = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(i < 0, -(i & ~_SIGN), i)


def _apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """More than one key apart (``b - a`` itself can overflow int64)."""
    return np.maximum(a, b) - 1 > np.minimum(a, b)


def _from_key(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, dtype=np.int64)
    return np.where(k < 0, (-k) | _SIGN, k).view(np.float64)


@dataclass(frozen=True)
class _Column:
    """A column the estimator sees, moved by one input feature alone, monotone over its range."""

    feature: str
    grid: np.ndarray  # input values, increasing
    values: np.ndarray  # the column at those values


def _column_map(pre: Callable[[pd.DataFrame], np.ndarray], base: dict[str, Any], schema: Schema,
                width: int) -> dict[int, _Column]:
    """Which estimator column moves with which number feature, probed on the fitted preprocessing."""
    seen: dict[int, list[str]] = {}
    found: dict[int, _Column] = {}
    for f in schema.features:
        if f.kind not in ("number", "integer") or "min" not in f.stats:
            continue
        lo, hi = float(f.stats["min"]), float(f.stats["max"])
        span = max(hi - lo, 1.0)
        grid = np.unique(np.concatenate([np.linspace(lo - span, hi + span, _GRID), np.linspace(lo, hi, _GRID)]))
        if f.kind == "integer":
            grid = np.unique(np.round(grid))
        z = pre(_frame_varying(base, schema, f.name, grid))
        if z.shape[1] != width:
            return {}
        moved = np.where(np.any(z != z[:1], axis=0))[0]
        for c in moved:
            seen.setdefault(int(c), []).append(f.name)
            # where the step is defined (log1p: above -1); a column undefined inside the range is left out
            fin = np.isfinite(z[:, c])
            col, g = z[fin, c], grid[fin]
            d = np.diff(col)
            if fin.sum() >= 8 and (np.all(d >= 0) or np.all(d <= 0)):
                found[int(c)] = _Column(f.name, g, col)
    return {c: v for c, v in found.items() if len(seen[c]) == 1}


def _frame_varying(base: dict[str, Any], schema: Schema, name: str, values: np.ndarray) -> pd.DataFrame:
    frame = frame_for_sklearn([base], schema).iloc[np.zeros(len(values), dtype=np.int64)].reset_index(drop=True)
    frame[name] = np.asarray(values, dtype=np.float64)
    return frame


def _boundaries(pre: Callable[[pd.DataFrame], np.ndarray], base: dict[str, Any], schema: Schema,
                cmap: dict[int, _Column], cols: np.ndarray, thr: np.ndarray, float32: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each split (column, threshold) on a mapped column: (its index, the last input double on the left,
    the first on the right).

    The test is sklearn's own: ``float32(z) <= t`` for its trees, ``z <= t`` for HistGradientBoosting,
    with ``z`` the fitted preprocessing's column. Bisection over the doubles' order, all splits at once.
    """
    idx = np.array([i for i, c in enumerate(cols) if int(c) in cmap], dtype=np.int64)
    if len(idx) == 0:
        return idx, np.zeros(0), np.zeros(0)
    cols, thr = cols[idx], thr[idx]
    feats = np.array([cmap[int(c)].feature for c in cols], dtype=object)
    template = frame_for_sklearn([base], schema)

    def left(x: np.ndarray, which: np.ndarray) -> np.ndarray:
        frame = template.iloc[np.zeros(len(which), dtype=np.int64)].reset_index(drop=True)
        fw = feats[which]
        for name in set(fw.tolist()):
            col = frame[name].to_numpy(dtype=np.float64, copy=True)
            rows = fw == name
            col[rows] = x[rows]
            frame[name] = col
        z = pre(frame)[np.arange(len(which)), cols[which]]
        if float32:
            z = z.astype(np.float32).astype(np.float64)  # compared in float64 on purpose (numpy 2 rules)
        return z <= thr[which]

    # a bracket from the grid: the last grid point on the left and the first on the right, scanning the
    # input from the side that goes left (the low end of an increasing column, the high end otherwise)
    lo = np.full(len(idx), np.nan)
    hi = np.full(len(idx), np.nan)
    est = np.full(len(idx), np.nan)
    for c in np.unique(cols):
        m = cmap[int(c)]
        sel = np.where(cols == c)[0]
        inc = bool(m.values[-1] >= m.values[0])
        grid, values = (m.grid, m.values) if inc else (m.grid[::-1], m.values[::-1])
        z = values.astype(np.float32).astype(np.float64) if float32 else values
        is_left = z[None, :] <= thr[sel, None]  # (splits, grid)
        first_right = np.argmin(is_left, axis=1)
        ok = is_left[:, 0] & ~is_left[np.arange(len(sel)), first_right]
        lo[sel] = np.where(ok, grid[np.maximum(first_right - 1, 0)], np.nan)
        hi[sel] = np.where(ok, grid[first_right], np.nan)
        # the boundary in the column itself (float32 trees: the rounding boundary above t), then in the
        # input by interpolation: within a few doubles where the column is affine between grid points
        zt = np.array([float32_split(v) for v in thr[sel]]) if float32 else thr[sel]
        est[sel] = np.interp(zt, values, grid) if inc else np.interp(zt, values[::-1], grid[::-1])
    keep = np.isfinite(lo) & np.isfinite(hi)
    idx, lo, hi, est, cols, thr, feats = idx[keep], lo[keep], hi[keep], est[keep], cols[keep], thr[keep], feats[keep]
    kl, kr = _to_key(lo), _to_key(hi)  # left(kl) true, left(kr) false
    # narrow the bracket to 2**10 doubles around the estimate where that bracket holds
    if len(kl):
        ke = _to_key(est)
        step = np.where(kr > kl, 1024, -1024)
        a, b = ke - step, ke + step
        inside = (np.minimum(kl, kr) <= np.minimum(a, b)) & (np.maximum(a, b) <= np.maximum(kl, kr))
        w = np.where(inside)[0]
        if len(w):
            with _quiet_numerics():
                both = left(np.concatenate([_from_key(a[w]), _from_key(b[w])]), np.concatenate([w, w]))
            good = both[:len(w)] & ~both[len(w):]
            kl[w[good]], kr[w[good]] = a[w[good]], b[w[good]]
    active = np.where(_apart(kl, kr))[0]
    while len(active):
        a, b = kl[active], kr[active]
        mid = (a >> 1) + (b >> 1) + (a & b & 1)  # floor((a + b) / 2) without int64 overflow
        with _quiet_numerics():
            is_l = left(_from_key(mid), active)
        kl[active] = np.where(is_l, mid, kl[active])
        kr[active] = np.where(is_l, kr[active], mid)
        active = active[_apart(kl[active], kr[active])]
    return idx, _from_key(kl), _from_key(kr)


def _probe_values(last_left: np.ndarray, first_right: np.ndarray, integer: np.ndarray) -> np.ndarray:
    """(splits, 4) probe values: the two doubles at the boundary and the float32 values either side of it."""
    f32 = np.float32
    with np.errstate(over="ignore"):
        down = last_left.astype(f32)
    down = np.where(down.astype(np.float64) > last_left, np.nextafter(down, f32(-np.inf)), down)
    up = np.nextafter(down, f32(np.inf))
    vals = np.stack([last_left, first_right, down.astype(np.float64), up.astype(np.float64)], axis=1)
    fl = np.floor(last_left)
    ints = np.stack([fl, fl + 1, fl - 1, fl + 2], axis=1)
    return np.where(integer[:, None], ints, vals)


def _reaching_rows(z_sample: np.ndarray, splits: Splits) -> np.ndarray:
    """For every split, a sample row whose path reaches it (-1 where none does)."""
    out = np.full(len(splits.feature), -1, dtype=np.int64)
    if splits.paths is None or len(z_sample) == 0:
        return out
    with _quiet_numerics():
        ind = splits.paths(z_sample).tocsc()
    has = np.diff(ind.indptr)[splits.node] > 0
    out[has] = ind.indices[ind.indptr[splits.node[has]]]
    return out


@dataclass(frozen=True)
class Sweep:
    """Every row sklearn and every target answer at export time (columns of JSON-like values)."""

    columns: dict[str, list[Any]]
    kinds: tuple[str, ...]
    expected: dict[str, list[Any]]
    splits: int  # splits of the estimator, all of them probed unless ``sampled``
    probed: int
    sampled: bool = False

    def __len__(self) -> int:
        return len(self.kinds)

    def rows(self, index: Any) -> list[dict[str, Any]]:
        return [{n: v[i] for n, v in self.columns.items()} for i in index]


def _threshold_columns(pipeline: Any, schema: Schema, sample_rows: list[dict[str, Any]], rng: np.random.Generator
                       ) -> tuple[dict[str, list[Any]], list[str], int, int, bool]:
    """Columns of the threshold rows, their kinds; the number of splits, of distinct boundaries probed, and
    whether they were sampled."""
    est = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    none: dict[str, list[Any]] = {n: [] for n in schema.names}
    try:
        splits = tree_splits(est)
    except (AttributeError, ValueError):
        return none, [], 0, 0, False
    if splits is None or not len(splits.feature):
        return none, [], 0, 0, False
    if hasattr(pipeline, "steps") and len(pipeline.steps) > 1:
        pre_step = pipeline[:-1]

        def pre(frame: pd.DataFrame) -> np.ndarray:
            return np.asarray(pre_step.transform(frame), dtype=np.float64)
    else:
        def pre(frame: pd.DataFrame) -> np.ndarray:
            return frame.to_numpy(dtype=np.float64)
    bases = [_complete(r, schema) for r in sample_rows] or [_complete({}, schema)]
    n_splits = len(splits.feature)
    with _quiet_numerics():
        z_bases = pre(frame_for_sklearn(bases, schema))
        cmap = _column_map(pre, bases[0], schema, z_bases.shape[1])
        # one bisection per distinct (column, threshold); its base row reaches one node of that split
        pairs, inverse = np.unique(np.stack([splits.feature.astype(np.float64), splits.threshold], axis=1),
                                   axis=0, return_inverse=True)
        inverse = inverse.ravel()
        node_reach = _reaching_rows(z_bases, splits)
        reach = np.full(len(pairs), -1, dtype=np.int64)
        reached = node_reach >= 0
        reach[inverse[reached]] = node_reach[reached]
        idx, last_left, first_right = _boundaries(pre, bases[0], schema, cmap, pairs[:, 0].astype(np.int64),
                                                  pairs[:, 1], splits.float32)
    if len(idx) == 0:
        return none, [], n_splits, 0, False
    cols = pairs[idx, 0].astype(np.int64)
    _, first = np.unique(np.stack([cols.astype(np.float64), last_left], axis=1), axis=0, return_index=True)
    first = np.sort(first)
    per = 4 if len(first) * 4 <= FULL_PROBE_ROWS else 2
    sampled = len(first) * per > MAX_SWEEP_ROWS
    if sampled:
        first = np.sort(rng.choice(first, MAX_SWEEP_ROWS // per, replace=False))
    names = np.array([cmap[int(c)].feature for c in cols[first]], dtype=object)
    integer = np.array([schema.feature(n).kind == "integer" for n in names], dtype=bool)
    probes = _probe_values(last_left[first], first_right[first], integer)[:, :per]
    if len(first) * per > FULL_PROBE_ROWS:
        return (*_packed(schema, bases, names, probes, rng), n_splits, len(first), sampled)
    r = reach[idx[first]]
    base_of = np.where(r >= 0, r, rng.integers(0, len(bases), len(first)))
    width = probes.shape[1]
    flat = probes.ravel()
    row_base = np.repeat(base_of, width)
    row_name = np.repeat(names, width)
    ok = np.isfinite(flat) & (np.abs(flat) < float(np.finfo(np.float32).max))
    keep = np.where(ok)[0]
    out: dict[str, list[Any]] = {}
    for f in schema.features:
        col = [bases[b][f.name] for b in row_base[keep]]
        if f.kind in ("number", "integer"):
            cast = int if f.kind == "integer" else float
            for j in np.where(row_name[keep] == f.name)[0]:
                col[j] = cast(flat[keep[j]])
        out[f.name] = col
    return out, [f"threshold:{n}" for n in row_name[keep]], n_splits, len(first), sampled


def _packed(schema: Schema, bases: list[dict[str, Any]], names: np.ndarray, probes: np.ndarray,
            rng: np.random.Generator) -> tuple[dict[str, list[Any]], list[str]]:
    """Too many boundaries for a row each (a 500-tree forest has ~200,000): every row probes one boundary of
    every number feature at once, so the rows number the most boundaries of one feature, not their sum.
    Each probe value still occurs in some row; only the guarantee that its row reaches the split is lost."""
    flat, owner = probes.ravel(), np.repeat(names, probes.shape[1])
    ok = np.isfinite(flat) & (np.abs(flat) < float(np.finfo(np.float32).max))
    by_name = {n: rng.permutation(flat[ok & (owner == n)]) for n in set(owner.tolist())}
    n_rows = max(len(v) for v in by_name.values())
    row_base = rng.integers(0, len(bases), n_rows)
    out: dict[str, list[Any]] = {}
    for f in schema.features:
        if f.name in by_name:
            vals = np.resize(by_name[f.name], n_rows)  # the shorter lists repeat: every value is in some row
            out[f.name] = [int(v) for v in vals] if f.kind == "integer" else vals.tolist()
        else:
            out[f.name] = [bases[b][f.name] for b in row_base]
    return out, ["threshold:packed"] * n_rows


def _tie_rows(pipeline: Any, schema: Schema, sample_rows: list[dict[str, Any]], rng: np.random.Generator
              ) -> list[tuple[str, dict[str, Any]]]:
    """Rows whose top two probabilities are exactly equal, searched among random rows in the training ranges."""
    if schema.task != "classification" or "probabilities" not in schema.outputs or not sample_rows:
        return []
    cands = list(sample_rows)
    for _ in range(2000):
        row = dict(sample_rows[int(rng.integers(len(sample_rows)))])
        for f in schema.features:
            if rng.random() < 0.5:
                continue
            if f.kind == "category" and f.categories:
                row[f.name] = f.categories[int(rng.integers(len(f.categories)))]
            elif f.kind == "number" and "min" in f.stats:
                row[f.name] = float(rng.uniform(f.stats["min"], f.stats["max"]))
            elif f.kind == "integer" and "min" in f.stats:
                row[f.name] = int(rng.integers(int(f.stats["min"]), int(f.stats["max"]) + 1))
        cands.append(row)
    with _quiet_numerics():
        proba = np.asarray(pipeline.predict_proba(frame_for_sklearn(cands, schema)))
    if proba.shape[1] < 2:
        return []
    top2 = np.sort(proba, axis=1)[:, -2:]
    ties = np.where(top2[:, 0] == top2[:, 1])[0][:50]
    return [("tie", cands[i]) for i in ties]


def _midpoint_rows(pipeline: Any, schema: Schema, sample_rows: list[dict[str, Any]], rng: np.random.Generator
                   ) -> list[tuple[str, dict[str, Any]]]:
    """Neighbours: rows halfway between two sample rows (numbers averaged, other fields from the first), where
    two training points are (nearly) equally far: the order of equal distances decides the neighbours."""
    est = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if not hasattr(est, "n_neighbors") or len(sample_rows) < 2:
        return []
    out = []
    for _ in range(min(200, len(sample_rows))):
        i, j = rng.choice(len(sample_rows), 2, replace=False)
        a, b = sample_rows[int(i)], sample_rows[int(j)]
        row = dict(a)
        for f in schema.features:
            if f.kind == "number" and a[f.name] is not None and b[f.name] is not None:
                row[f.name] = (float(a[f.name]) + float(b[f.name])) / 2.0
        out.append(("tie:midpoint", row))
    return out


def _frame_from_columns(columns: dict[str, list[Any]], schema: Schema) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for f in schema.features:
        vals = columns[f.name]
        if f.kind == "category":
            data[f.name] = pd.Series([np.nan if is_missing(v) else v for v in vals], dtype=object)
        else:
            data[f.name] = pd.Series(np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64))
    return pd.DataFrame(data)


def _step_inputs(pipeline: Any, pre: Callable[[pd.DataFrame], Any]
                 ) -> Iterator[tuple[Any, Callable[[pd.DataFrame], Any]]]:
    """Every step of ``pipeline`` (through Pipelines and ColumnTransformers) with the function that gives its input."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(pipeline, Pipeline):
        for k, (_, step) in enumerate(pipeline.steps):
            if step is None or step == "passthrough":
                continue
            head = pipeline.steps[:k]

            def before(frame: pd.DataFrame, head: list[Any] = head) -> Any:
                x = pre(frame)
                for _, s in head:
                    if s is not None and s != "passthrough":
                        x = s.transform(x)
                return x

            yield from _step_inputs(step, before)
    elif isinstance(pipeline, ColumnTransformer):
        for _, trans, cols in pipeline.transformers_:
            if isinstance(trans, str):
                continue

            def select(frame: pd.DataFrame, cols: Any = cols) -> Any:
                x = pre(frame)
                return x[cols] if isinstance(x, pd.DataFrame) else np.asarray(x)[:, cols]

            yield from _step_inputs(trans, select)
    else:
        yield pipeline, pre


def _step_thresholds(step: Any) -> list[tuple[int, float]]:
    """(input column, t) where the step's output jumps, with ``z <= t`` on one side: sklearn's own rules."""
    from sklearn.preprocessing import Binarizer, KBinsDiscretizer

    if isinstance(step, Binarizer):  # X > threshold -> 1: z <= t is 0
        width = getattr(step, "n_features_in_", 0)
        return [(j, float(step.threshold)) for j in range(width)]
    if isinstance(step, KBinsDiscretizer):  # searchsorted(edges[1:-1], z, side="right"): z == edge is above
        return [(j, float(np.nextafter(e, -np.inf))) for j, edges in enumerate(step.bin_edges_)
                for e in np.asarray(edges, dtype=np.float64)[1:-1]]
    return []


def _step_edge_rows(pipeline: Any, schema: Schema, bases: list[dict[str, Any]], rng: np.random.Generator
                    ) -> list[tuple[str, dict[str, Any]]]:
    """Rows on every discontinuity of a preprocessing step (Binarizer thresholds, KBinsDiscretizer edges),
    placed in input space by bisection on the fitted steps, at the boundary's two doubles and float32 sides."""
    bases = [_complete(r, schema) for r in bases] or [_complete({}, schema)]
    out: list[tuple[str, dict[str, Any]]] = []
    steps = list(_step_inputs(pipeline, lambda frame: frame))
    for step, before in steps[:-1] if len(steps) > 1 else []:
        pairs = _step_thresholds(step)
        if not pairs:
            continue

        def pre(frame: pd.DataFrame, before: Callable[[pd.DataFrame], Any] = before) -> np.ndarray:
            return np.asarray(before(frame), dtype=np.float64)

        with _quiet_numerics():
            width = pre(frame_for_sklearn(bases[:1], schema)).shape[1]
            cmap = _column_map(pre, bases[0], schema, width)
            cols = np.array([c for c, _ in pairs], dtype=np.int64)
            idx, last_left, first_right = _boundaries(pre, bases[0], schema, cmap, cols,
                                                      np.array([t for _, t in pairs]), False)
        names = [cmap[int(c)].feature for c in cols[idx]]
        integer = np.array([schema.feature(n).kind == "integer" for n in names], dtype=bool)
        probes = _probe_values(last_left, first_right, integer)
        for name, values, is_int in zip(names, probes, integer, strict=True):
            for v in values:
                if np.isfinite(v):
                    row = dict(bases[int(rng.integers(len(bases)))])
                    row[name] = int(v) if is_int else float(v)
                    out.append((f"edge:{type(step).__name__}:{name}", row))
    return out


def build_sweep(pipeline: Any, schema: Schema, sample: pd.DataFrame, *, seed: int = 0, golden: str = "mixed"
                ) -> tuple[Sweep, list[int]]:
    """The whole sweep, and which of its rows golden.json keeps (a bounded, representative sample)."""
    if golden not in GOLDEN_MODES:
        raise ValueError(f"golden must be one of {', '.join(GOLDEN_MODES)}, not {golden!r}")
    rng = np.random.default_rng(seed)
    frame = sample[list(schema.names)]
    records = {_row_key(r, schema.names) for r in rows_to_json(frame, schema)} if golden == "mixed" else set()
    if len(frame) > MAX_HOLDOUT:
        frame = frame.iloc[np.sort(rng.choice(len(frame), MAX_HOLDOUT, replace=False))]
    holdout = rows_to_json(frame, schema)
    head = _mixed_rows(holdout, schema, rng, records) if golden == "mixed" else holdout
    base = head[0] if head else _complete({}, schema)
    labelled: list[tuple[str, dict[str, Any]]] = [(golden, r) for r in head]
    labelled += _edge_rows(base, schema)
    labelled += _tie_rows(pipeline, schema, head, rng)
    labelled += _midpoint_rows(pipeline, schema, head, rng)
    labelled += _step_edge_rows(pipeline, schema, head, rng)
    if records:  # an edge row that happens to equal a record (e.g. all-min of a two-valued table) stays out
        labelled = [(k, r) for k, r in labelled if _row_key(r, schema.names) not in records]
    ok_rows = {id(r) for r in _predictable(pipeline, [r for _, r in labelled], schema)}
    labelled = [(k, r) for k, r in labelled if id(r) in ok_rows]
    # threshold rows start from the rows above whose paths reach the split: real holdout rows only
    # when they may be shipped; they themselves are not shipped whole (one field is the probe)
    probe_from = [r for k, r in labelled if k == golden] or [base]
    tcols, tkinds, n_splits, probed, sampled = _threshold_columns(pipeline, schema, probe_from, rng)
    n_head = len(labelled)
    columns = {n: [r[n] for _, r in labelled] + tcols[n] for n in schema.names}
    n_thr = len(tkinds)
    kinds = tuple([k for k, _ in labelled] + tkinds)
    with _quiet_numerics():
        expected = _reference_frame(pipeline, _frame_from_columns(columns, schema), schema)
    keep = list(range(n_head))
    # a random order of the threshold rows; the first that are no record (a probe can land on a record's
    # own value: such a row is swept, never shipped) up to the bound go to golden.json
    shipped: list[int] = []
    for i in rng.permutation(np.arange(n_head, n_head + n_thr)):
        if len(shipped) == MAX_GOLDEN_THRESHOLD_ROWS:
            break
        if not records or _row_key({n: columns[n][i] for n in schema.names}, schema.names) not in records:
            shipped.append(int(i))
    keep += sorted(shipped)
    return Sweep(columns, kinds, expected, n_splits, probed, sampled), keep


def golden_from_sweep(sweep: Sweep, keep: list[int], schema: Schema, tolerance: dict[str, Any] | None = None,
                      golden: str = "mixed") -> dict[str, Any]:
    rows = sweep.rows(keep)
    expected = {k: [v[i] for i in keep] for k, v in sweep.expected.items()}
    return {
        "format": GOLDEN_FORMAT,
        "task": schema.task,
        "tolerance": dict(tolerance or {"abs": 1e-5, "rel": 1e-5}),
        "kinds": [sweep.kinds[i] for i in keep],
        "rows": rows,
        "expected": expected,
        "origin": golden,
    }


def build_golden(pipeline: Any, schema: Schema, sample: pd.DataFrame, *, seed: int = 0,
                 tolerance: dict[str, Any] | None = None, golden: str = "mixed") -> dict[str, Any]:
    """golden.json's content alone (the sweep's shipped sample)."""
    sweep, keep = build_sweep(pipeline, schema, sample, seed=seed, golden=golden)
    return golden_from_sweep(sweep, keep, schema, tolerance, golden)
