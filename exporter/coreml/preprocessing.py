"""Core ML converters for the column-wise steps: ColumnTransformer, imputers, scalers, one-hot.

The model's inputs are one feature per column (``Double`` for numbers, NaN
when missing; ``String`` for categories, ``MISSING_CATEGORY`` (U+FFFF) when missing,
the runtime's one mapping ``normalize_category``; ``""`` is a category like any
other). Steps keep per-column features as long as they can (one ``Imputer``
or ``OneHotEncoder`` per column) and become one array at the first step that
works on many columns at once (a ``FeatureVectorizer``).

Scalers: Core ML's ``Scaler`` computes ``scale * (x + shift)``. StandardScaler
(``(x - mean) / scale_``) becomes shift ``-mean``, scale ``1/scale_``: equal to
sklearn's within an ulp. A tree after a scaler does not read the Scaler's output:
it branches on the scaler's inputs with thresholds mapped back through sklearn's
own scaler (``ctx.folds``, trees.py), which is exact.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from skedge.runtime.missing import MISSING_CATEGORY, is_missing

from .._steps import resolve_columns
from ._builder import ARRAY, DOUBLE, STRING, Builder, CoreMLUnsupported, Var
from ._context import Context
from .clipper import clip_array

__all__ = [
    "convert_column_transformer",
    "convert_pipeline_steps",
    "convert_simple_imputer",
    "convert_standard_scaler",
    "convert_minmax_scaler",
    "convert_one_hot",
    "convert_function_transformer",
    "convert_selector",
    "convert_feature_union",
]


def _columns(x: Any, what: str) -> list[Var]:
    if isinstance(x, Var):
        if x.kind == ARRAY and x.width > 1:
            raise CoreMLUnsupported(f"{what} after a step that merged the columns into one array is not supported")
        return [x]
    return list(x)


def convert_column_transformer(b: Builder, ct: Any, x: Any, ctx: Context) -> Var:
    from ._convert import convert_step

    cols = _columns(x, "a ColumnTransformer")
    names = list(getattr(ct, "feature_names_in_", []))
    parts: list[Var] = []
    for name, trans, columns in ct.transformers_:
        idx = resolve_columns(columns, names, len(cols))
        if (isinstance(trans, str) and trans == "drop") or not idx:
            continue
        sub = [cols[i] for i in idx]
        if isinstance(trans, str) and trans == "passthrough":
            strings = [v.name for v in sub if v.kind == STRING]
            if strings:
                raise CoreMLUnsupported(f"ColumnTransformer part {name!r} passes the category column "
                                        f"{strings[0]!r} through unencoded")
            parts.extend(sub)
            continue
        res = convert_step(b, name, trans, sub, ctx)
        parts.extend([res] if isinstance(res, Var) else res)
    if not parts:
        raise CoreMLUnsupported("the ColumnTransformer outputs no columns")
    return b.vectorize(parts, "ct_out")


def convert_function_transformer(b: Builder, step: Any, x: Any, ctx: Context) -> Any:
    """The identity (``func=None``): what a ColumnTransformer's ``"passthrough"`` becomes once fitted."""
    if step.func is not None:
        raise CoreMLUnsupported("it runs arbitrary Python code, which cannot be "
                                "written as a Core ML model; write the step as a class and register a converter")
    return x


def convert_pipeline_steps(b: Builder, pipe: Any, x: Any, ctx: Context) -> Any:
    from ._convert import convert_step

    out: Any = x
    for name, step in pipe.steps:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        out = convert_step(b, name, step, out, ctx)
    return out


def _nan(v: Any) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def convert_simple_imputer(b: Builder, imp: Any, x: Any, ctx: Context) -> Any:
    if getattr(imp, "add_indicator", False):
        raise CoreMLUnsupported("SimpleImputer(add_indicator=True) is not supported")
    mv = imp.missing_values
    if not (isinstance(mv, float) and mv != mv):
        # skedge hands sklearn every missing value as NaN (numbers and categories alike), so an imputer
        # looking for None, "" or a sentinel never fires in sklearn: only NaN is what "missing" means here
        raise CoreMLUnsupported(f"SimpleImputer(missing_values={mv!r}): skedge passes missing values to sklearn "
                                "as NaN, so only missing_values=np.nan is supported")
    stats = list(np.asarray(imp.statistics_, dtype=object))
    keep_empty = bool(getattr(imp, "keep_empty_features", False))
    if isinstance(x, Var) and x.kind == ARRAY:
        fills = [0.0 if _nan(s) and keep_empty else s for s in stats]
        if any(_nan(f) for f in fills):
            raise CoreMLUnsupported("SimpleImputer drops a column it learned no value for, after the columns "
                                    "were merged into one array")
        out = b.var("imputed", ARRAY, x.width)
        m = b.model([x], [out], "impute")
        m.imputer.imputedDoubleArray.vector.extend([float(f) for f in fills])
        m.imputer.replaceDoubleValue = float("nan")
        return out
    cols = _columns(x, "SimpleImputer")
    out_vars: list[Var] = []
    for v, fill in zip(cols, stats, strict=True):
        if v.kind == STRING:
            if is_missing(fill):  # sklearn drops a column it could not learn a value for
                if keep_empty:
                    raise CoreMLUnsupported("SimpleImputer(keep_empty_features=True) on an all-missing category "
                                            "column is not supported")
                continue
            if not isinstance(fill, str):
                raise CoreMLUnsupported(f"SimpleImputer fills the category column {v.name!r} with {fill!r}, "
                                        "not a string")
            o = b.var(f"{v.name}_imputed", STRING)
            m = b.model([v], [o], "impute")
            m.imputer.imputedStringValue = fill
            m.imputer.replaceStringValue = MISSING_CATEGORY  # what the runtime feeds for a missing category
            out_vars.append(o)
            continue
        if _nan(fill):
            if not keep_empty:
                continue
            fill = 0.0
        if not v.nan and v.name not in ctx.inputs:  # imputed already by an earlier step: nothing to replace
            out_vars.append(v)
            continue
        o = b.var(f"{v.name}_imputed", DOUBLE)
        m = b.model([v], [o], "impute")
        m.imputer.imputedDoubleValue = float(fill)
        m.imputer.replaceDoubleValue = float("nan")
        out_vars.append(o)
    return out_vars


def _scaler(b: Builder, x: Any, shift: np.ndarray, factor: np.ndarray, hint: str) -> Var:
    xa = b.vectorize(x, f"{hint}_in")
    if len(shift) != xa.width:
        raise ValueError(f"{len(shift)} scaler columns for {xa.width} input columns")
    out = b.var(hint, ARRAY, xa.width, xa.nan)
    m = b.model([xa], [out], hint)
    m.scaler.shiftValue.extend(np.asarray(shift, dtype=np.float64).tolist())
    m.scaler.scaleValue.extend(np.asarray(factor, dtype=np.float64).tolist())
    return out


def convert_standard_scaler(b: Builder, s: Any, x: Any, ctx: Context) -> Var:
    n = int(s.n_features_in_)
    shift = -np.asarray(s.mean_, dtype=np.float64) if s.with_mean else np.zeros(n)
    factor = 1.0 / np.asarray(s.scale_, dtype=np.float64) if s.with_std else np.ones(n)
    out = _scaler(b, x, shift, factor, "standard")
    ctx.folds[out.name] = (x, s)  # trees fold it into their thresholds (trees.py): exact
    return out


def convert_minmax_scaler(b: Builder, s: Any, x: Any, ctx: Context) -> Var:
    # sklearn: X * scale_ + min_  ==  scale_ * (X + min_ / scale_)
    scale_ = np.asarray(s.scale_, dtype=np.float64)
    out = _scaler(b, x, np.asarray(s.min_, dtype=np.float64) / scale_, scale_, "minmax")
    if not s.clip:
        ctx.folds[out.name] = (x, s)  # trees fold it into their thresholds (trees.py): exact
    if s.clip:
        lo, hi = s.feature_range
        out = clip_array(b, out, np.full(out.width, float(lo)), np.full(out.width, float(hi)), "minmax_clip")
    return out


def convert_one_hot(b: Builder, enc: Any, x: Any, ctx: Context) -> list[Var]:
    if getattr(enc, "_infrequent_enabled", False):
        raise CoreMLUnsupported("OneHotEncoder with infrequent categories (min_frequency/max_categories) is not "
                                "supported")
    drop_idx = getattr(enc, "drop_idx_", None)
    if drop_idx is not None and any(d is not None for d in drop_idx):
        raise CoreMLUnsupported("OneHotEncoder(drop=...) is not supported; Core ML's OneHotEncoder has one "
                                "column per category")
    if enc.handle_unknown not in ("ignore", "error", "warn", "infrequent_if_exist"):
        raise CoreMLUnsupported(f"OneHotEncoder(handle_unknown={enc.handle_unknown!r}) is not supported")
    cols = _columns(x, "OneHotEncoder")
    from ._proto import proto

    handle = proto().OneHotEncoder_pb2.OneHotEncoder
    out: list[Var] = []
    for v, cats in zip(cols, enc.categories_, strict=True):
        if v.kind != STRING:
            raise CoreMLUnsupported(f"OneHotEncoder on the numeric column {v.name!r}: Core ML one-hot encodes "
                                    "strings (and int64, which skedge inputs are not)")
        # sklearn's NaN category is the runtime's marker (U+FFFF); "" is a category like any other
        values = [MISSING_CATEGORY if is_missing(c) else c for c in cats]
        if not all(isinstance(c, str) for c in values):
            raise CoreMLUnsupported(f"OneHotEncoder categories of {v.name!r} are not all strings")
        if len(set(values)) != len(values):
            raise CoreMLUnsupported(f"OneHotEncoder categories of {v.name!r} hold a missing value twice")
        o = b.var(f"{v.name}_onehot", ARRAY, len(values))
        m = b.model([v], [o], "onehot")
        m.oneHotEncoder.stringCategories.vector.extend(values)
        m.oneHotEncoder.outputSparse = False
        m.oneHotEncoder.handleUnknown = handle.ErrorOnUnknown if enc.handle_unknown == "error" else handle.IgnoreUnknown
        out.append(o)
    return out


def convert_selector(b: Builder, step: Any, x: Any, ctx: Context) -> Any:
    """A feature selector (SelectKBest, VarianceThreshold, SelectFromModel, RFE, ...): the columns
    ``get_support`` keeps, in order. Separate columns are picked as they are; from one array, an
    ``ArrayFeatureExtractor`` takes them by index ("extracts the value at that index")."""
    keep = [int(i) for i in step.get_support(indices=True)]
    if not keep:
        raise CoreMLUnsupported("the selector keeps no column")
    if isinstance(x, Var) and x.kind == ARRAY and x.width > 1:
        out = b.var("selected", ARRAY if len(keep) > 1 else DOUBLE, len(keep), x.nan)
        m = b.model([x], [out], "select")
        m.arrayFeatureExtractor.extractIndex.extend(keep)
        return out
    cols = [x] if isinstance(x, Var) else list(x)
    if max(keep) >= len(cols):
        raise ValueError(f"the selector keeps column {max(keep)} of {len(cols)}")
    return [cols[i] for i in keep]


def convert_feature_union(b: Builder, union: Any, x: Any, ctx: Context) -> Var:
    """FeatureUnion: each part on the same input, their outputs side by side (weights would scale them)."""
    from ._convert import convert_step

    if union.transformer_weights:
        raise CoreMLUnsupported("FeatureUnion with transformer_weights is not supported")
    parts: list[Var] = []
    for name, trans in union.transformer_list:
        if isinstance(trans, str) and trans == "drop":
            continue
        res = x if isinstance(trans, str) and trans == "passthrough" else convert_step(b, name, trans, x, ctx)
        parts.extend([res] if isinstance(res, Var) else res)
    return b.vectorize(parts, "union_out")
