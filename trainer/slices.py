"""Slices of the holdout: a model can be good on average and poor on the rows of one island or one sex.

A category (or boolean) column slices by value, missing as a slice of its own; a number column by quantile
bins whose edges come from the training rows (so a slice means the same range whatever the holdout holds).
Each slice gets its row count, every metric with a bootstrap interval, and is gated only when it has at least
``min_rows`` rows: a slice of 8 rows is reported, never used to refuse a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .intervals import Bootstrap, interval, point, resampled
from .metrics import LOWER_IS_BETTER, MAIN_METRIC, Answers

__all__ = ["Slice", "MISSING_SLICE", "slice_rows", "evaluate_slices"]

MISSING_SLICE = "(missing)"


@dataclass(frozen=True)
class Slice:
    column: str
    label: str
    rows: np.ndarray  # positions in the holdout


def _missing(col: pd.Series) -> np.ndarray:
    values = col.astype(object)
    return np.asarray(values.isna() | (values.astype(str) == ""), dtype=bool)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def slice_rows(column: str, kind: str, holdout: pd.Series, train: pd.Series, bins: int) -> list[Slice]:
    """The slices of one column, in a stable order (values sorted, bins ascending, missing last)."""
    missing = _missing(holdout)
    out: list[Slice] = []
    if kind in ("number", "integer"):
        known = pd.to_numeric(train, errors="coerce").to_numpy(dtype=np.float64)
        known = known[~np.isnan(known)]
        edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if known.size else np.zeros(0)
        x = pd.to_numeric(holdout, errors="coerce").to_numpy(dtype=np.float64)
        which = np.searchsorted(edges, x, side="right")  # bin i holds edges[i-1] <= x < edges[i]
        for i in range(len(edges) + 1):
            label = (f"< {_fmt(edges[0])}" if i == 0 else f"≥ {_fmt(edges[-1])}" if i == len(edges) else
                     f"[{_fmt(edges[i - 1])}, {_fmt(edges[i])})") if len(edges) else "all"
            out.append(Slice(column, label, np.flatnonzero((which == i) & ~missing)))
    else:
        text = np.array([str(v) for v in holdout.astype(object)], dtype=object)
        for value in sorted(set(text[~missing])):
            out.append(Slice(column, value, np.flatnonzero((text == value) & ~missing)))
    if missing.any():
        out.append(Slice(column, MISSING_SLICE, np.flatnonzero(missing)))
    return [s for s in out if s.rows.size]


_TIE_BREAK = {"classification": ("log_loss",), "regression": ("rmse",)}


def _badness(metric: str, value: float | None) -> float:
    if value is None:
        return float("-inf")
    return value if metric in LOWER_IS_BETTER else -value


def _clean(v: float) -> float | None:
    return None if np.isnan(v) else v


def evaluate_slices(answers: Answers, slices: dict[str, list[Slice]], boot: Bootstrap, min_rows: int
                    ) -> dict[str, Any]:
    """Per column: each slice's rows, metrics and intervals, whether it is gated, and the worst gated slice."""
    main = MAIN_METRIC[answers.task]
    # a tie on the main metric (every island at accuracy 1.0) is broken by a finer one
    order = (main, *_TIE_BREAK.get(answers.task, ()))
    columns: dict[str, Any] = {}
    for column, parts in slices.items():
        table: list[dict[str, Any]] = []
        for s in parts:
            a = answers.subset(s.rows)
            values = point(a)
            draws = resampled({"model": a}, boot)["model"]
            table.append({"slice": s.label, "rows": int(s.rows.size), "gated": bool(s.rows.size >= min_rows),
                          "metrics": {k: _clean(v) for k, v in values.items()},
                          "intervals": {k: (list(iv) if (iv := interval(d, boot.level)) else None)
                                        for k, d in draws.items()}})
        # among the slices large enough to gate, when there are any: a 9-row slice is noise more than signal
        gated = [t for t in table if t["gated"] and t["metrics"][main] is not None]
        ranked = gated or [t for t in table if t["metrics"][main] is not None]
        worst = max(ranked, key=lambda t: tuple(_badness(m, t["metrics"].get(m)) for m in order))["slice"] \
            if ranked else None
        columns[column] = {"slices": table, "worst": worst, "ranked_by": ", then ".join(order),
                           "worst_among": "gated slices" if gated else "all slices"}
    return columns

