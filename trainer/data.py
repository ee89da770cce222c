"""The data layer: load a table, infer and check its schema, fingerprint it, split it.

Missing values are normalised here, once: a CSV is read with the one list of missing
spellings (``skedge.runtime.missing.MISSING_TEXT``, pandas' defaults, which the
runtime's readers use too); a missing category becomes NaN for sklearn (the runtime
feeds the graph ``MISSING_CATEGORY`` for it). A number in a column declared a
category is spelled by ``category_text`` (``101``, not ``101.0``), the rule the runtime
applies to a number given for a category field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from skedge.exporter._export import frame_sha256
from skedge.exporter._schema import infer_features
from skedge.runtime._errors import DataError
from skedge.runtime._schema import Feature
from skedge.runtime.missing import MISSING_TEXT, category_text, is_missing

from .checks import (
    boolean_column,
    cells,
    check_finite,
    check_target_values,
    high_cardinality,
    infer_column_kind,
    not_numbers,
)

__all__ = ["Dataset", "load_table", "prepare", "split", "frame_sha256"]


def load_table(path: Path, *, text: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """A table from CSV or Parquet; CSV columns named in ``text`` (declared categories) are read as text, so a
    category keeps its spelling (``02139`` is not the number 2139, and not the category ``2139``)."""
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, keep_default_na=False, na_values=sorted(MISSING_TEXT),
                               dtype={c: str for c in text} or None)
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
    # high-cardinality columns left out under features.high_cardinality = "drop": name -> distinct values
    left_out: tuple[tuple[str, int], ...] = ()


def _coerce(frame: pd.DataFrame, name: str, kind: str, source: str = "data") -> pd.Series:
    """A column in the kind the schema says, or an error naming the first row that does not fit.

    Row numbers are the frame's index labels: the file's data rows, also after rows without a target were left out.
    """
    col = frame[name]
    if kind == "category":
        return col.map(lambda v: np.nan if is_missing(v) else category_text(v)).astype(object)
    if kind == "boolean":  # True/False with blanks too: a nullable boolean, as 1.0/0.0/NaN
        return boolean_column(col, name, source)
    bad, num = not_numbers(col, name)
    if bad.any():
        i = int(np.argmax(bad))
        more = f" ({int(bad.sum()):,} such cells: {cells(col, bad)})" if bad.sum() > 1 else ""
        raise DataError(f"{source}: row {col.index[i]}, column {name!r}: expected a number, got {col.iloc[i]!r}{more}")
    if kind == "integer":
        frac = num.notna() & (num != np.floor(num))
        if frac.any():
            i = int(np.argmax(frac.to_numpy()))
            raise DataError(f"{source}: row {col.index[i]}, column {name!r}: expected a whole number, got "
                            f"{col.iloc[i]!r}")
    return num.astype(np.float64)


def prepare(frame: pd.DataFrame, *, target: str | None, drop: list[str], kinds: dict[str, str],
            source: str = "data", high_cardinality_mode: str = "error", max_levels: int = 100) -> Dataset:
    """Split features from target, check kinds, normalise missing values, fingerprint.

    ``high_cardinality_mode``/``max_levels``: what to do with a string column nobody declared that has more
    distinct values than ``max_levels`` (``features.high_cardinality``): error, drop (with a warning) or keep.
    """
    for col in [*drop, *([target] if target else []), *kinds]:
        if col not in frame.columns:
            raise DataError(f"{source}: no column {col!r}; columns are {', '.join(map(str, frame.columns))}")
    if frame.empty:
        raise DataError(f"{source}: the table has no rows")
    sha = frame_sha256(frame)
    frame = frame.reset_index(drop=True)  # index labels are the file's row numbers in every message below
    dropped = 0
    y = None
    if target is not None:
        missing = frame[target].map(is_missing)
        dropped = int(missing.sum())
        frame = frame.loc[~missing]
        if frame.empty:
            raise DataError(f"{source}: no row has a value for the target {target!r} (all {dropped:,} are blank)")
        y = frame[target]
        check_target_values(y, target, source)
        if y.dtype == object:
            y = y.astype(str)
    X = frame.drop(columns=[c for c in [*drop, target] if c is not None])
    if X.shape[1] == 0:
        raise DataError(f"{source}: no feature columns left")
    all_kinds = {str(c): kinds.get(str(c)) or infer_column_kind(X[c], str(c), source) for c in X.columns}
    left_out = tuple((name, int(X[name].nunique())) for name in high_cardinality(
        X, all_kinds, list(kinds), mode=high_cardinality_mode, max_levels=max_levels, source=source))
    for name, _ in left_out:
        del all_kinds[name]
    if not all_kinds:
        raise DataError(f"{source}: no feature columns left (every column was dropped: see the warnings above)")
    X = pd.DataFrame({name: _coerce(X, name, kind, source) for name, kind in all_kinds.items()})
    check_finite(X, all_kinds, source)
    X = X.reset_index(drop=True)
    y = None if y is None else y.reset_index(drop=True)
    # statistics on the coerced columns; every feature nullable: the feature layer imputes them all
    features = infer_features(X, nullable=True, kinds=all_kinds)
    return Dataset(X=X, y=y, features=features, sha256=sha, rows=len(frame) + dropped, dropped_rows=dropped,
                   left_out=left_out)


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
