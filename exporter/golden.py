"""Golden vectors: the rows every exported target must answer like sklearn.

Not only a holdout sample: edge rows (all missing, unseen category, minimum,
maximum, far outside the training range), rows placed exactly on tree
thresholds and one float32 / float64 step either side (mapped back through the
preprocessing into input space), and rows on probability ties.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from skedge.runtime._schema import Schema

from ._schema import frame_for_sklearn, rows_to_json
from .onnx.trees import tree_thresholds

__all__ = ["GOLDEN_FORMAT", "build_golden", "reference_outputs"]

GOLDEN_FORMAT = 1
MAX_HOLDOUT = 200
MAX_THRESHOLDS = 150
UNSEEN = "__skedge_unseen__"


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
        return _reference_outputs(pipeline, rows, schema)


def _reference_outputs(pipeline: Any, rows: list[dict[str, Any]], schema: Schema) -> dict[str, Any]:
    frame = frame_for_sklearn(rows, schema)
    if schema.task == "classification":
        return {"label": _labels(pipeline.predict(frame)), "probabilities": pipeline.predict_proba(frame).tolist()}
    if schema.task == "regression":
        return {"value": np.asarray(pipeline.predict(frame), dtype=np.float64).ravel().tolist()}
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


def _affine_map(pre: Any, base_frame: pd.DataFrame, schema: Schema) -> dict[int, tuple[str, float, float]]:
    """For each column the estimator sees: (input feature, a, b) with column = a * feature + b, where affine.

    Found by probing the fitted preprocessing rather than by reading each step,
    so it holds for any pipeline whose preprocessing sklearn can run.
    """
    out: dict[int, tuple[str, float, float]] = {}
    t0 = np.asarray(pre.transform(base_frame), dtype=np.float64)[0]
    for f in schema.features:
        if f.kind not in ("number", "integer"):
            continue
        x0 = float(base_frame[f.name].iloc[0])
        if not np.isfinite(x0):
            continue
        step = max(abs(x0), 1.0) * 1e-3
        probes = base_frame.iloc[[0, 0]].copy()
        probes[f.name] = [x0 + step, x0 + 2 * step]
        t = np.asarray(pre.transform(probes), dtype=np.float64)
        changed = np.where((t[0] != t0) | (t[1] != t0))[0]
        for c in changed:
            a = (t[0, c] - t0[c]) / step
            a2 = (t[1, c] - t0[c]) / (2 * step)
            if a != 0 and abs(a - a2) <= 1e-9 * max(1.0, abs(a)):
                out[int(c)] = (f.name, float(a), float(t0[c] - a * x0))
    return out


def _threshold_rows(pipeline: Any, base: dict[str, Any], schema: Schema, rng: np.random.Generator
                    ) -> list[tuple[str, dict[str, Any]]]:
    est = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    try:
        thresholds = tree_thresholds(est)
    except (AttributeError, ValueError):
        return []
    if not thresholds:
        return []
    # probe from a complete row: a missing value would hide its feature from the probe
    base = dict(base)
    for f in schema.features:
        if base.get(f.name) is None:
            if f.kind == "category" and f.categories:
                base[f.name] = f.categories[0]
            elif "mean" in f.stats:
                base[f.name] = int(round(f.stats["mean"])) if f.kind in ("integer", "boolean") else f.stats["mean"]
    base_frame = frame_for_sklearn([base], schema)
    if hasattr(pipeline, "steps") and len(pipeline.steps) > 1:
        pre = pipeline[:-1]
        amap = _affine_map(pre, base_frame, schema)
    else:
        amap = {i: (f.name, 1.0, 0.0) for i, f in enumerate(schema.features) if f.kind in ("number", "integer")}
    usable = [(c, t) for c, t in thresholds if c in amap]
    if len(usable) > MAX_THRESHOLDS:
        pick = rng.choice(len(usable), MAX_THRESHOLDS, replace=False)
        usable = [usable[i] for i in sorted(pick)]
    out = []
    f32_max = float(np.finfo(np.float32).max)
    for c, thr in usable:
        name, a, b = amap[c]
        x = (thr - b) / a
        if not np.isfinite(x) or abs(x) >= f32_max:  # a split that only separates missing values: thr = inf
            continue
        f32 = np.float32(x)
        candidates = {x, float(np.nextafter(x, -np.inf)), float(np.nextafter(x, np.inf)),
                      float(f32), float(np.nextafter(f32, np.float32(-np.inf))),
                      float(np.nextafter(f32, np.float32(np.inf)))}
        if schema.feature(name).kind == "integer":
            candidates = {float(np.floor(x)), float(np.ceil(x))}
        for v in sorted(candidates):
            if np.isfinite(v):
                val: Any = int(v) if schema.feature(name).kind == "integer" else v
                out.append((f"threshold:{name}", {**base, name: val}))
    return out


def _tie_rows(pipeline: Any, schema: Schema, sample_rows: list[dict[str, Any]], rng: np.random.Generator
              ) -> list[tuple[str, dict[str, Any]]]:
    """Rows whose top two probabilities are exactly equal, searched among random rows in the training ranges."""
    if schema.task != "classification":
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


def build_golden(pipeline: Any, schema: Schema, sample: pd.DataFrame, *, seed: int = 0,
                 tolerance: dict[str, Any] | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    frame = sample[schema.names]
    if len(frame) > MAX_HOLDOUT:
        frame = frame.iloc[np.sort(rng.choice(len(frame), MAX_HOLDOUT, replace=False))]
    holdout = rows_to_json(frame, schema)
    base = holdout[0]
    labelled: list[tuple[str, dict[str, Any]]] = [("holdout", r) for r in holdout]
    labelled += _edge_rows(base, schema)
    labelled += _threshold_rows(pipeline, base, schema, rng)
    labelled += _tie_rows(pipeline, schema, holdout, rng)
    ok_rows = {id(r) for r in _predictable(pipeline, [r for _, r in labelled], schema)}
    labelled = [(k, r) for k, r in labelled if id(r) in ok_rows]
    rows = [r for _, r in labelled]
    return {
        "format": GOLDEN_FORMAT,
        "task": schema.task,
        "tolerance": dict(tolerance or {"abs": 1e-5, "rel": 1e-5}),
        "kinds": [k for k, _ in labelled],
        "rows": rows,
        "expected": reference_outputs(pipeline, rows, schema),
    }
