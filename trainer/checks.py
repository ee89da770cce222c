"""What training sees in a table, said before it becomes a model.

A pandas reading of a user's file is not yet a feature table: an id column or a date string is
"a category" to pandas (one-hot: 2,000 levels, a 5.9 MB model), one ``"unknown"`` cell makes a
numeric column text, a True/False column with blanks arrives as Python objects, ``inf`` reaches
sklearn and fails there. Each check here turns one of those into a decision the user sees: an
error naming the column, its rows and values and the way out, or a ``DataWarning`` for what the
config asked to be dropped.

Row numbers are the data rows of the file, counted from 0 (as the runtime's ``row N``).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from skedge.exporter._schema import infer_kind
from skedge.runtime._errors import DataError
from skedge.runtime.missing import is_missing

__all__ = ["DataWarning", "cells", "boolean_column", "infer_column_kind", "high_cardinality", "check_finite",
           "check_target", "check_target_values", "check_split", "not_numbers", "MAX_CELLS_SHOWN"]

# rows from which a text column whose every value differs is taken for an id, whatever max_levels says
MIN_ROWS_FOR_AN_ID = 20
MAX_CELLS_SHOWN = 5  # bad cells listed in a message; the count says how many there are in all
# a text column is taken as numbers with a few stray cells when at least this share of its cells are numbers
NUMERIC_SHARE = 0.5
_BOOL_TEXT = {"true": 1.0, "false": 0.0}
# a column declared boolean also takes the words the runtime's file readers take (runtime/_files.py)
_DECLARED_BOOL_TEXT = {**_BOOL_TEXT, "yes": 1.0, "no": 0.0}
_DATE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?\s*$")


class DataWarning(UserWarning):
    """Training changed the table it was given (e.g. left a high-cardinality column out, as configured)."""


def cells(col: pd.Series, mask: np.ndarray) -> str:
    """``row 17 'unknown', row 230 '?' and 3 more``: the first cells where ``mask`` holds, by row label."""
    rows = np.flatnonzero(mask)
    shown = ", ".join(f"row {col.index[i]} {_short(col.iloc[i])}" for i in rows[:MAX_CELLS_SHOWN])
    more = f" and {len(rows) - MAX_CELLS_SHOWN:,} more" if len(rows) > MAX_CELLS_SHOWN else ""
    return shown + more


def _short(value: object) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "…"


def not_numbers(col: pd.Series, name: str) -> tuple[np.ndarray, pd.Series]:
    """The cells of ``col`` that are neither missing nor a number, and the column as numbers."""
    num = pd.to_numeric(col, errors="coerce")
    bad = (num.isna() & ~col.map(is_missing)).to_numpy(dtype=bool, copy=True)
    return bad, num


def _as_booleans(col: pd.Series) -> pd.Series | None:
    """A column of True/False (bools, or the words in any case) with blanks as 1.0/0.0/NaN, else None."""
    values = [v for v in col.tolist() if not is_missing(v)]
    if not values:
        return None
    if all(isinstance(v, bool | np.bool_) for v in values):
        return col.map(lambda v: np.nan if is_missing(v) else float(bool(v))).astype(np.float64)
    if all(isinstance(v, str) and v.strip().lower() in _BOOL_TEXT for v in values):
        return col.map(lambda v: np.nan if is_missing(v) else _BOOL_TEXT[v.strip().lower()]).astype(np.float64)
    return None


def infer_column_kind(col: pd.Series, name: str, source: str) -> str:
    """The kind of a column nobody declared, refusing a numeric column with a few stray text cells."""
    if pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col):
        if _as_booleans(col) is not None:
            return "boolean"  # pandas reads True/False with blanks as objects: a nullable boolean
        present = ~col.map(is_missing).to_numpy(dtype=bool)
        bad, num = not_numbers(col, name)
        numbers = int(num.notna().sum())
        if bad.any() and numbers and numbers >= NUMERIC_SHARE * int(present.sum()):
            raise DataError(
                f"{source}: column {name!r} holds numbers, but {int(bad.sum()):,} of its {int(present.sum()):,} "
                f"cells are not numbers ({cells(col, bad)}); pandas would have made it a category of "
                f"{col[present].nunique():,} levels. Blank those cells (a blank is a missing value), or declare "
                f"it a category: data.kinds = {{ {name} = \"category\" }}")
    return infer_kind(col)


def _bool_cell(v: object) -> float | None:
    """1.0/0.0 for True/False (bools, the words in any case, 0/1), NaN for missing, None for anything else."""
    if is_missing(v):
        return np.nan
    if isinstance(v, bool | np.bool_):
        return float(bool(v))
    if isinstance(v, str):
        word = v.strip().lower()
        if word in _DECLARED_BOOL_TEXT:
            return _DECLARED_BOOL_TEXT[word]
        try:
            v = float(word)
        except ValueError:
            return None
    if isinstance(v, int | float | np.integer | np.floating) and float(v) in (0.0, 1.0):
        return float(v)
    return None


def boolean_column(col: pd.Series, name: str, source: str) -> pd.Series:
    """A declared or inferred boolean column as 1.0/0.0/NaN, or an error naming the cells that are not."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype(np.float64)
    values = col.map(_bool_cell)
    bad = values.isna().to_numpy() & ~col.map(is_missing).to_numpy(dtype=bool)
    if bad.any():
        raise DataError(f"{source}: column {name!r}: expected a boolean (True/False or 0/1, blank for missing), "
                        f"got {cells(col, bad)}")
    return values.astype(np.float64)


def _what_it_looks_like(values: pd.Series, levels: int) -> str:
    sample = values.head(50).tolist()
    if sample and all(isinstance(v, str) and _DATE.match(v) for v in sample):
        return "dates or times? derive year, month or day of week from them instead"
    if levels == len(values):
        return "every value differs: an id?"
    if values.map(lambda v: len(str(v))).mean() > 30:
        return "free text?"
    return "an id, a date or free text?"


def high_cardinality(X: pd.DataFrame, kinds: dict[str, str], declared: Sequence[str], *, mode: str,
                     max_levels: int, source: str) -> list[str]:
    """Inferred category columns with more than ``max_levels`` levels, or whose every value differs (an id, from
    MIN_ROWS_FOR_AN_ID rows on): refused, or named to drop with a warning.

    A column the config declares a category (``data.kinds``) is kept whatever its count: the user said so.
    """
    if mode == "keep":
        return []
    dropped = []
    for name, kind in kinds.items():
        if kind != "category" or name in declared:
            continue
        values = X[name][~X[name].map(is_missing)]
        levels = int(values.nunique())
        # a column whose every value differs teaches nothing (each holdout value is unseen), however few
        all_distinct = levels == len(values) >= MIN_ROWS_FOR_AN_ID
        if levels <= max_levels and not all_distinct:
            continue
        what = _what_it_looks_like(values, levels)
        limit = (f"features.max_levels = {max_levels}" if levels > max_levels else
                 f"every value differs, whatever features.max_levels = {max_levels} says")
        if mode == "drop":
            warnings.warn(f"{source}: column {name!r} left out: {levels:,} distinct values in {len(values):,} rows "
                          f"({what}); features.high_cardinality = \"drop\" ({limit})", DataWarning, stacklevel=2)
            dropped.append(name)
            continue
        raise DataError(
            f"{source}: column {name!r} has {levels:,} distinct values in {len(values):,} rows ({what}); one-hot "
            f"encoding would add {levels:,} features. Leave it out (data.drop = [\"{name}\"]), or keep it: "
            f"data.kinds = {{ {name} = \"category\" }} for this column, features.high_cardinality = \"keep\" for "
            f"all (\"drop\" leaves such columns out with a warning; refused because {limit})")
    return dropped


def check_finite(X: pd.DataFrame, kinds: dict[str, str], source: str) -> None:
    """inf and -inf are not missing values and no model learns from them: refused, with their rows."""
    for name, kind in kinds.items():
        if kind == "category":
            continue
        values = X[name].to_numpy(dtype=np.float64)
        inf = np.isinf(values)
        if inf.any():
            raise DataError(f"{source}: column {name!r} holds infinite values ({cells(X[name], inf)}); blank "
                            "them (missing) or replace them with a finite number")


def check_target_values(y: pd.Series, target: str, source: str) -> None:
    """inf is neither a quantity to learn nor a label (run before the target's rows are renumbered)."""
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        inf = np.isinf(y.to_numpy(dtype=np.float64))
        if inf.any():
            raise DataError(f"{source}: the target {target!r} holds infinite values ({cells(y, inf)}); a target "
                            "must be a finite number or a label")


def check_target(y: pd.Series | None, task: str, target: str | None, source: str) -> None:
    """A classification target needs two classes."""
    if y is None:
        return
    if task == "classification":
        classes = y.unique()
        if len(classes) < 2:
            raise DataError(f"{source}: the target {target!r} has a single class ({_short(classes[0])}) in all "
                            f"{len(y):,} rows with a target: a classifier needs at least two. Check the data "
                            "(filtered too much?), or use model.task = \"anomaly\" without a target")


MIN_ROWS_PER_SIDE = 2  # a metric needs two rows to be a metric; a fit needs two to be a fit


def check_split(rows: int, holdout: float, *, n_classes: int | None, stratified: bool, source: str) -> None:
    """Refuse a holdout fraction that leaves either side of the split too small, before sklearn does it worse."""
    held = math.ceil(holdout * rows)  # sklearn's rounding of test_size
    kept = rows - held
    need = max(MIN_ROWS_PER_SIDE, n_classes or 0) if stratified else MIN_ROWS_PER_SIDE
    why = (f"a stratified split needs at least one row of each of the {n_classes} classes on each side"
           if stratified and n_classes and n_classes > MIN_ROWS_PER_SIDE else
           f"each side needs at least {MIN_ROWS_PER_SIDE} rows")
    unstratify = ", or set evaluation.stratify = false" if need > MIN_ROWS_PER_SIDE else ""
    if held < need:
        lo = math.ceil(100 * need / rows) / 100
        fix = f"raise evaluation.holdout to {lo:g} or more" if lo < 0.9 and rows - math.ceil(lo * rows) >= need \
            else "add rows"
        raise DataError(f"{source}: evaluation.holdout = {holdout:g} of {rows:,} rows holds out {held} row"
                        f"{'s' * (held != 1)}; {why}: {fix}{unstratify}")
    if kept < need:
        raise DataError(f"{source}: evaluation.holdout = {holdout:g} of {rows:,} rows leaves {kept} row"
                        f"{'s' * (kept != 1)} to train on; {why}: lower evaluation.holdout or add rows{unstratify}")
