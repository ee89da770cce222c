"""Inferring the input schema (kinds, categories, statistics) from a DataFrame, and nullability from the model.

A field is nullable where the fitted pipeline answers a missing value (issue 10.6), not where the rows at
hand happen to hold one: ``answers_missing`` asks sklearn itself, on sample rows with that one field made
missing (NaN), and calls the field nullable only when sklearn answers without an error and with finite
outputs. The user can say otherwise per field (``nullable={...}`` / ``skedge export --nullable/--not-nullable``);
a field said nullable where sklearn cannot answer a missing value is refused, since the runtime would then
accept rows the reference cannot score.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from skedge.runtime._errors import DataError, ExportError
from skedge.runtime._schema import Feature, Schema, is_missing

__all__ = ["infer_kind", "infer_features", "feature_stats", "frame_for_sklearn", "rows_to_json", "answers_missing",
           "text_columns", "as_text_columns", "STATS_FROM_SAMPLE", "STATS_FROM_TRAINING"]

# where a schema's statistics (ranges, categories, missing rates) came from: Feature.stats["source"]
STATS_FROM_SAMPLE = "export sample"
STATS_FROM_TRAINING = "training data"
_PROBE_ROWS = 8


def _fitted_on_text(step: Any, width: int) -> list[bool] | None:
    """Per input column of ``step`` (a transformer or a Pipeline of them): was its first column-wise step
    fitted on text? None where no such step says (a scaler, a custom step)."""
    for s in (step.steps if hasattr(step, "steps") else [(None, step)]):
        s = s[1]
        per = getattr(s, "categories_", None)
        if per is None and getattr(s, "statistics_", None) is not None:
            per = [np.asarray([v]) for v in np.asarray(s.statistics_, dtype=object)]
        if per is not None and len(per) == width:
            return [np.asarray(c).dtype.kind in "OUS" and any(isinstance(v, str) for v in np.asarray(c).ravel())
                    for c in per]
        if s is not None and s != "passthrough":
            return None
    return None


def text_columns(pipeline: Any) -> set[str]:
    """Input columns the fitted pipeline reads as text: routed by a ColumnTransformer to an encoder or an
    imputer fitted on strings. A sample read from CSV holds ``101`` as a number where the pipeline was fitted
    on the text ``"101"``; reading those columns as text keeps their spelling (and leading zeros)."""
    from sklearn.compose import ColumnTransformer

    out: set[str] = set()
    stack = [pipeline]
    while stack:
        obj = stack.pop()
        if hasattr(obj, "steps"):
            stack.extend(s for _, s in obj.steps)
        elif isinstance(obj, ColumnTransformer):
            for _, trans, cols in obj.transformers_:
                if isinstance(trans, str) or not isinstance(cols, list | tuple | np.ndarray):
                    continue
                names = [c for c in cols if isinstance(c, str)]
                flags = _fitted_on_text(trans, len(names)) if len(names) == len(cols) else None
                out.update(n for n, f in zip(names, flags or [], strict=False) if f)
                stack.append(trans)
    return out


def as_text_columns(frame: pd.DataFrame, names: Collection[str]) -> pd.DataFrame:
    """``frame`` with the numeric columns among ``names`` spelled as text (the runtime's ``category_text``)."""
    from skedge.runtime.missing import category_text

    todo = [n for n in names if n in frame.columns and pd.api.types.is_numeric_dtype(frame[n])
            and not pd.api.types.is_bool_dtype(frame[n])]
    if not todo:
        return frame
    frame = frame.copy()
    for n in todo:
        frame[n] = frame[n].map(lambda v: np.nan if is_missing(v) else category_text(v)).astype(object)
    return frame


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


def _missing_column(col: pd.Series) -> Any:
    """A column of the same rows, all missing, in a dtype that keeps what sklearn sees (NaN for numbers,
    NaN in an object or categorical column for strings)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return pd.Categorical([np.nan] * len(col), categories=col.cat.categories)
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return np.full(len(col), np.nan)
    return pd.Series([np.nan] * len(col), index=col.index, dtype=object)


def _answers(pipeline: Any, rows: pd.DataFrame) -> str | None:
    """None when sklearn answers these rows without an error and with finite outputs, else why not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on unknown categories and the like: an answer still
        try:
            outs = [pipeline.predict(rows)]
            for method in ("predict_proba", "decision_function"):
                if hasattr(pipeline, method):
                    outs.append(getattr(pipeline, method)(rows))
        except Exception as exc:  # any refusal of sklearn's means: no answer for a missing value here
            return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    for out in outs:
        a = np.asarray(out)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            return "the answer is not finite (NaN or inf)"
    return None


def answers_missing(pipeline: Any, frame: pd.DataFrame, names: Sequence[str]) -> dict[str, str | None]:
    """For each field: None when the fitted pipeline answers rows with that field missing, else why not.

    Base rows: up to eight sample rows sklearn answers as they are, so that only the missing value can fail.
    One call for all fields at once (each block of rows with one field missing); field by field only when
    that call fails. With no row sklearn answers, nothing can be asked: every field gets the reason.
    """
    head = frame.head(max(_PROBE_ROWS * 4, 32))
    base = head.head(_PROBE_ROWS)
    if _answers(pipeline, base) is not None:
        good = [i for i in range(len(head)) if _answers(pipeline, head.iloc[i:i + 1]) is None][:_PROBE_ROWS]
        base = head.iloc[good]
    if base.empty:
        return {n: "sklearn answers none of the sample rows" for n in names}

    def block(name: str) -> pd.DataFrame:
        rows = base.copy()
        rows[name] = _missing_column(rows[name])
        return rows

    if names and _answers(pipeline, pd.concat([block(n) for n in names], ignore_index=True)) is None:
        return {n: None for n in names}
    return {n: _answers(pipeline, block(n)) for n in names}


def _overrides(nullable: Mapping[str, bool] | Collection[str], columns: Sequence[str]) -> dict[str, bool]:
    given = dict(nullable) if isinstance(nullable, Mapping) else {str(n): True for n in nullable}
    unknown = [n for n in given if n not in columns]
    if unknown:
        raise ExportError(f"nullable names the field {unknown[0]!r}, which the sample does not have; fields are "
                          f"{', '.join(columns)}")
    return {str(k): bool(v) for k, v in given.items()}


def infer_features(frame: pd.DataFrame, *, nullable: Mapping[str, bool] | Collection[str] | bool | None = None,
                   kinds: Mapping[str, str] | None = None, pipeline: Any = None,
                   source: str = STATS_FROM_TRAINING) -> tuple[Feature, ...]:
    """One Feature per column.

    ``nullable``: True/False for all; or per field, a map (True/False) or a collection of names (nullable),
    overriding what is inferred for the others. Inferred: with ``pipeline``, what the fitted pipeline
    answers (``answers_missing``); without, whether the frame holds a missing value. ``source``: where the
    statistics come from, recorded in each feature's stats (the card says it).
    """
    columns = [str(c) for c in frame.columns]
    given = {} if nullable is None or isinstance(nullable, bool) else _overrides(nullable, columns)
    probed: dict[str, str | None] = {}
    if pipeline is not None and not isinstance(nullable, bool):
        probed = answers_missing(pipeline, frame, [c for c in columns if c not in given or given[c]])
        forced = [c for c, v in given.items() if v and probed.get(c) is not None]
        if forced:
            raise ExportError(f"field {forced[0]!r} was declared nullable, but the fitted pipeline cannot answer a "
                              f"missing value there ({probed[forced[0]]}): impute it in the pipeline, or leave it "
                              "not nullable")
    out = []
    for name in frame.columns:
        col = frame[name]
        kind = (kinds or {}).get(str(name)) or infer_kind(col)
        stats = feature_stats(col, kind)
        stats["source"] = source
        if isinstance(nullable, bool):
            nul = nullable
        elif str(name) in given:
            nul = given[str(name)]
        elif pipeline is not None:
            nul = probed.get(str(name)) is None
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
