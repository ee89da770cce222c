"""``profile.json``: what a monitor on the device compares with (issue 15; ``skedge.runtime.monitor``).

Per feature: bin edges frozen from the reference's quantiles and the reference count per bin, or for a
category its most frequent values and "other"; the missing count; the training range, and how often rows
that did not fix it fell outside it; how often a category was one the model does not know. For the model's
answer (key ``"prediction"``): the same over the pipeline's predictions on the holdout (labels for
classification and anomaly, values for regression).

Where the numbers come from (``build_profile``):

* ``reference``: the training table (``skedge train`` passes the rows the model was fitted on), or a table a
  user passes to ``export(..., reference=...)``; without one, the sample given to ``export`` (the holdout).
* ``holdout``: the sample given to ``export`` (the trainer's holdout): the predictions' distribution, and the
  out-of-range and unseen rates of rows the range was not taken from.

Only bin edges, counts and the category values the schema already lists go in: no row, so no training
record (a test checks it). Deterministic: the same data give the same bytes (the bundle is reproducible).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from skedge.runtime._schema import Feature, Schema, normalize_category
from skedge.runtime.missing import is_missing
from skedge.runtime.monitor import PREDICTION, PROFILE_FORMAT

__all__ = ["build_profile", "profile_bytes", "MAX_BINS", "TOP_VALUES"]

MAX_BINS = 10
TOP_VALUES = 20
# a bin should hold enough reference rows that its proportion means something
ROWS_PER_BIN = 20


def _numbers(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if is_missing(v) else float(v) for v in values], dtype=np.float64)


def _edges(x: np.ndarray) -> list[float]:
    """Inner edges from quantiles, dropped where a bin would hold no reference value (discrete features)."""
    bins = int(min(MAX_BINS, max(2, len(x) // ROWS_PER_BIN)))
    edges = sorted({float(e) for e in np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])})
    while edges:
        counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
        empty = np.flatnonzero(counts == 0)
        if not empty.size:
            break
        del edges[max(int(empty[0]) - 1, 0)]
    return edges


def _numeric(x: np.ndarray, held: np.ndarray | None) -> dict[str, Any]:
    present = x[~np.isnan(x)]
    if not present.size:  # never seen a value: one bin, any value is out of range
        return {"kind": "numeric", "edges": [], "counts": [0], "min": 0.0, "max": 0.0, "rows": len(x),
                "missing": len(x), "out_of_range": [0, 0], "unseen": [0, 0]}
    edges = _edges(present)
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    lo, hi = float(present.min()), float(present.max())
    out: dict[str, Any] = {"kind": "numeric", "edges": edges, "counts": [int(c) for c in counts], "min": lo,
                           "max": hi, "rows": len(x), "missing": int(len(x) - present.size)}
    # measured on rows that did not fix the range; on the reference itself it is 0 by construction, and the
    # runtime's exchangeability floor (2 / (n + 1)) stands for it
    h = present if held is None else held[~np.isnan(held)]
    out["out_of_range"] = [int(((h < lo) | (h > hi)).sum()), int(h.size)]
    out["unseen"] = [0, int(present.size)]
    return out


def _category(values: list[str], missing: str, known: set[str] | None, held: list[str] | None,
              top: list[Any] | None = None) -> dict[str, Any]:
    present = [v for v in values if v != missing]
    counts: dict[Any, int] = {}
    for v in present:
        counts[v] = counts.get(v, 0) + 1
    if top is None:  # most frequent first, ties by the value's text: the same data give the same file
        top = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_VALUES]]
    in_top = set(top)
    other = sum(c for v, c in counts.items() if v not in in_top)
    out: dict[str, Any] = {"kind": "category", "values": top, "counts": [counts.get(v, 0) for v in top] + [other],
                           "rows": len(values), "missing": len(values) - len(present)}
    h = present if held is None else [v for v in held if v != missing]
    out["unseen"] = [sum(v not in known for v in h) if known is not None else 0, len(h)]
    out["out_of_range"] = [0, len(h)]
    return out


def _feature(f: Feature, ref: pd.Series, held: pd.Series | None, missing: str) -> dict[str, Any]:
    if f.kind == "category":
        spell = lambda col: [normalize_category(v, missing) for v in col.tolist()]  # noqa: E731
        return _category(spell(ref), missing, set(f.categories) if f.categories is not None else None,
                         spell(held) if held is not None else None)
    return _numeric(_numbers(ref.tolist()), _numbers(held.tolist()) if held is not None else None)


def _prediction(pipeline: Any, schema: Schema, holdout: pd.DataFrame) -> dict[str, Any]:
    answers = np.asarray(pipeline.predict(holdout))
    if schema.task == "regression":  # a multi-output regressor: its first output is watched
        return _numeric((answers[:, 0] if answers.ndim == 2 else answers).astype(np.float64), None)
    labels = [a.item() if hasattr(a, "item") else a for a in answers.reshape(-1)]
    classes = list(schema.classes) if schema.classes is not None else sorted(set(labels) | {1, -1})
    return _category(labels, "\uffff\uffff", None, None, top=classes)


def build_profile(pipeline: Any, schema: Schema, holdout: pd.DataFrame,
                  reference: pd.DataFrame | None = None) -> dict[str, Any]:
    """profile.json's content: features from ``reference`` (else ``holdout``), predictions on ``holdout``."""
    ref = holdout if reference is None else reference
    absent = [f.name for f in schema.features if f.name not in ref.columns]
    if absent:
        from skedge.runtime._errors import ExportError

        raise ExportError(f"reference lacks the column {absent[0]!r} the model takes: pass the table the "
                          "pipeline was trained on (or none: the sample is used)")
    separate = reference is not None
    features = {f.name: _feature(f, ref[f.name], holdout[f.name] if separate else None, schema.missing_category)
                for f in schema.features}
    return {"format": PROFILE_FORMAT, "source": "reference" if separate else "sample",
            "rows": {"reference": len(ref), "holdout": len(holdout)},
            "features": features, PREDICTION: _prediction(pipeline, schema, holdout)}


def profile_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, allow_nan=False) + "\n").encode()
