"""Inferring the input schema (kinds, categories, training statistics) from a DataFrame."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from skedge.runtime._errors import DataError
from skedge.runtime._schema import Feature, Schema, is_missing

__all__ = ["infer_kind", "infer_features", "feature_stats", "frame_for_sklearn", "rows_to_json"]


def infer_kind(col: pd.Series) -> str:
    """number, integer, boolean or category, from the column's dtype and values."""
    if pd.api.types.is_bool_dtype(col):
        return "boolean"
    if pd.api.types.is_integer_dtype(col):
        return "integer"
    if pd.api.types.is_numeric_dtype(col):
        return "number"
    if isinstance(col.dtype, pd.CategoricalDtype) and not all(isinstance(c, str) for c in col.cat.categories):
        raise DataError(f"column {col.name!r}: a categorical of {col.cat.categories.dtype} values is not "
                        "supported; cast it to str (categories) or to a number")
    if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(col) \
            or pd.api.types.is_string_dtype(col):
        values = [v for v in col.tolist() if not is_missing(v)]
        if all(isinstance(v, str) for v in values):
            return "category"
        odd = next(v for v in values if not isinstance(v, str))
        raise DataError(f"column {col.name!r}: mixes strings with {type(odd).__name__} values; "
                        "a column must hold numbers or strings")
    raise DataError(f"column {col.name!r}: dtype {col.dtype} is not supported (numbers, booleans or strings)")


def feature_stats(col: pd.Series, kind: str) -> dict[str, Any]:
    n = len(col)
    missing = int(col.map(is_missing).sum()) if kind == "category" else int(col.isna().sum())
    stats: dict[str, Any] = {"count": n, "missing_rate": round(missing / n, 6) if n else 0.0}
    if kind == "category":
        values = col[~col.map(is_missing)].astype(str)
        top = values.value_counts().head(10)
        stats["top"] = [[str(k), int(v)] for k, v in sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))]
    else:
        x = col.astype(np.float64).dropna()
        if len(x):
            stats.update(min=float(x.min()), max=float(x.max()), mean=float(x.mean()),
                         std=float(x.std(ddof=0)))
    return stats


def infer_features(frame: pd.DataFrame, *, nullable: Mapping[str, bool] | bool | None = None,
                   kinds: Mapping[str, str] | None = None) -> tuple[Feature, ...]:
    """One Feature per column. ``nullable``: True/False for all, a per-column map, or None (seen missing)."""
    out = []
    for name in frame.columns:
        col = frame[name]
        kind = (kinds or {}).get(str(name)) or infer_kind(col)
        stats = feature_stats(col, kind)
        if isinstance(nullable, bool):
            nul = nullable
        elif isinstance(nullable, Mapping) and str(name) in nullable:
            nul = bool(nullable[str(name)])
        else:
            nul = stats["missing_rate"] > 0
        cats = None
        if kind == "category":
            cats = tuple(sorted({str(v) for v in col.tolist() if not is_missing(v)}))
        out.append(Feature(name=str(name), kind=kind, nullable=nul, categories=cats, stats=stats))
    return tuple(out)


def frame_for_sklearn(rows: Sequence[Mapping[str, Any]], schema: Schema) -> pd.DataFrame:
    """JSON-like rows as sklearn saw its training data: NaN for missing, numbers float64, strings object."""
    data: dict[str, Any] = {}
    for f in schema.features:
        vals = [r.get(f.name) for r in rows]
        if f.kind == "category":
            data[f.name] = pd.Series([np.nan if is_missing(v) else v for v in vals], dtype=object)
        else:
            data[f.name] = pd.Series([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
    return pd.DataFrame(data)


def rows_to_json(frame: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts (missing -> None), the form golden.json and the runtime use."""
    cols: dict[str, list[Any]] = {}
    for f in schema.features:
        col = frame[f.name].tolist()
        if f.kind == "category":
            cols[f.name] = [None if is_missing(v) else str(v) for v in col]
        elif f.kind in ("integer", "boolean"):
            cols[f.name] = [None if is_missing(v) else (bool(v) if f.kind == "boolean" else int(v)) for v in col]
        else:
            cols[f.name] = [None if is_missing(v) else float(v) for v in col]
    return [{name: cols[name][i] for name in cols} for i in range(len(frame))]
