"""The data layer: load a table, infer and check its schema, fingerprint it, split it.

Missing values are normalised here, once: NaN/None/"" in a category column become
NaN for sklearn (the runtime turns the same values into ``""`` for the graph,
with ``skedge.runtime.normalize_category``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from skedge.exporter._export import frame_sha256
from skedge.exporter._schema import infer_features, infer_kind
from skedge.runtime._errors import DataError
from skedge.runtime._schema import Feature, is_missing

__all__ = ["Dataset", "load_table", "prepare", "split", "frame_sha256"]


def load_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    raise DataError(f"data file {path}: unsupported format {suffix!r}; use .csv or .parquet")


@dataclass(frozen=True)
class Dataset:
    X: pd.DataFrame
    y: pd.Series | None
    features: tuple[Feature, ...]
    sha256: str
    rows: int
    dropped_rows: int


def _coerce(frame: pd.DataFrame, name: str, kind: str) -> pd.Series:
    """A column in the kind the schema says, or an error naming the first row that does not fit."""
    col = frame[name]
    if kind == "category":
        return col.map(lambda v: np.nan if is_missing(v) else str(v)).astype(object)
    if kind == "boolean" and pd.api.types.is_bool_dtype(col):
        return col.astype(np.float64)
    num = pd.to_numeric(col, errors="coerce")
    bad = num.isna() & ~col.map(is_missing)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(f"row {i}, column {name!r}: expected a number, got {col.iloc[i]!r}")
    if kind == "integer":
        frac = num.notna() & (num != np.floor(num))
        if frac.any():
            i = int(np.argmax(frac.to_numpy()))
            raise DataError(f"row {i}, column {name!r}: expected a whole number, got {col.iloc[i]!r}")
    if kind == "boolean":
        odd = num.notna() & ~num.isin([0, 1])
        if odd.any():
            i = int(np.argmax(odd.to_numpy()))
            raise DataError(f"row {i}, column {name!r}: expected a boolean (0/1), got {col.iloc[i]!r}")
    return num.astype(np.float64)


def prepare(frame: pd.DataFrame, *, target: str | None, drop: list[str], kinds: dict[str, str],
            source: str = "data") -> Dataset:
    """Split features from target, check kinds, normalise missing values, fingerprint."""
    for col in [*drop, *([target] if target else []), *kinds]:
        if col not in frame.columns:
            raise DataError(f"{source}: no column {col!r}; columns are {', '.join(map(str, frame.columns))}")
    if frame.empty:
        raise DataError(f"{source}: the table has no rows")
    sha = frame_sha256(frame)
    dropped = 0
    y = None
    if target is not None:
        missing = frame[target].map(is_missing)
        dropped = int(missing.sum())
        frame = frame.loc[~missing].reset_index(drop=True)
        y = frame[target]
        if y.dtype == object:
            y = y.astype(str)
    X = frame.drop(columns=[c for c in [*drop, target] if c is not None])
    if X.shape[1] == 0:
        raise DataError(f"{source}: no feature columns left")
    all_kinds = {str(c): kinds.get(str(c)) or infer_kind(X[c]) for c in X.columns}
    X = pd.DataFrame({name: _coerce(X, name, kind) for name, kind in all_kinds.items()})
    # statistics on the coerced columns; every feature nullable: the feature layer imputes them all
    features = infer_features(X, nullable=True, kinds=all_kinds)
    return Dataset(X=X, y=y, features=features, sha256=sha, rows=len(frame) + dropped, dropped_rows=dropped)


def split(ds: Dataset, *, holdout: float, seed: int, stratify: bool
          ) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any]:
    strat = None
    if stratify and ds.y is not None:
        counts = ds.y.value_counts()
        if counts.min() >= 2:
            strat = ds.y
    if ds.y is None:
        tr, te = train_test_split(ds.X, test_size=holdout, random_state=seed)
        return tr, te, None, None
    return train_test_split(ds.X, ds.y, test_size=holdout, random_state=seed, stratify=strat)
