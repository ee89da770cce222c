"""Converters for the column-wise steps: ColumnTransformer, imputers, scalers, encoders.

Everything numeric stays in float64, operation for operation as sklearn does it
(``X -= mean_; X /= scale_`` becomes Sub then Div), so the graph reproduces
sklearn's bits, not just its values. A missing string arrives as
``MISSING_CATEGORY`` (U+FFFF, ``skedge.runtime.missing``), never as ``""``: ``""`` is a
string sklearn answers as one more category, and so does the graph. A sklearn
category NaN/None is matched against the marker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skedge.runtime.missing import MISSING_CATEGORY, is_missing

from .._steps import resolve_columns
from ._builder import BOOL, DOUBLE, STRING, Graph, Var
from ._context import Context

__all__ = [
    "convert_column_transformer",
    "convert_pipeline_steps",
    "convert_simple_imputer",
    "convert_standard_scaler",
    "convert_minmax_scaler",
    "convert_robust_scaler",
    "convert_maxabs_scaler",
    "convert_one_hot",
    "convert_ordinal",
    "convert_passthrough",
    "convert_function_transformer",
]


def _string_or_number_consts(g: Graph, cats: Any, x: Var, hint: str) -> str:
    """A constant of the categories in the column's element type; missing ones as the marker/NaN."""
    if x.dtype == STRING:
        return g.const(np.array(_category_names(cats), dtype=object), hint)
    return g.const(np.asarray([np.nan if is_missing(c) else float(c) for c in cats], dtype=np.float64),
                   hint)


def _category_names(cats: Any) -> list[str]:
    """The categories as the graph spells them: missing ones as the marker."""
    return [MISSING_CATEGORY if is_missing(c) else str(c) for c in cats]


def _match(g: Graph, x: Var, cats: Any, hint: str) -> str:
    """[N, K] bool: x == category k. A NaN category matches a NaN value (numbers) or the marker (strings)."""
    if x.dtype == STRING:
        names = _category_names(cats)
        if len(set(names)) == len(names):
            # a category's number by one hash lookup a row (unknown: -1, matching none), then K integer
            # compares: K string compares a row cost 5 ms of 8,192 rows of bench/bench_runtime.py's forest
            codes = g.op1("LabelEncoder", [x.name], f"{hint}_code", domain="ai.onnx.ml", keys_strings=names,
                          values_int64s=list(range(len(names))), default_int64=-1)
            return g.op1("Equal", [codes, g.const(np.arange(len(names), dtype=np.int64), f"{hint}_ids")],
                         f"{hint}_eq")
    c = _string_or_number_consts(g, cats, x, f"{hint}_cats")
    eq = g.op1("Equal", [x.name, c], f"{hint}_eq")
    if x.dtype != STRING and any(is_missing(v) for v in cats):
        nan_mask = np.array([is_missing(v) for v in cats])
        isnan = g.op1("IsNaN", [x.name], f"{hint}_isnan")
        both = g.op1("And", [isnan, g.const(nan_mask, f"{hint}_nanmask")], f"{hint}_nanmatch")
        eq = g.op1("Or", [eq, both], f"{hint}_eqnan")
    return eq


def convert_passthrough(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var | list[Var]:
    return x


def convert_function_transformer(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var | list[Var]:
    # sklearn >= 1.6 stores a ColumnTransformer's "passthrough" as FunctionTransformer(func=None)
    if step.func is None:
        return x
    from skedge.runtime._errors import ExportError

    raise ExportError(
        f"it runs arbitrary Python code (func={getattr(step.func, '__name__', step.func)!r}), which cannot be "
        "translated into an ONNX graph or checked for parity; write the step as a class and register a "
        "converter for it"
    )


def convert_column_transformer(g: Graph, ct: Any, x: Var | list[Var], ctx: Context) -> Var:
    from ._convert import convert_step

    cols = g.columns(x, "ct_in")
    names = list(getattr(ct, "feature_names_in_", []))
    parts: list[Var] = []
    origin: list[str | None] = []
    in_origin = ctx.origin or [None] * len(cols)
    for name, trans, columns in ct.transformers_:
        idx = resolve_columns(columns, names, len(cols))
        if trans == "drop" or not idx:
            continue
        sub = [cols[i] for i in idx]
        ctx.origin = [in_origin[i] for i in idx]
        if trans == "passthrough":
            out = g.matrix(sub, f"{name}_pass") if len({v.dtype for v in sub}) == 1 else None
            if out is None:
                raise TypeError(f"step {name!r}: passthrough of mixed string and number columns")
        else:
            res = convert_step(g, name, trans, sub, ctx)
            out = g.matrix(res, f"{name}_out") if isinstance(res, list) else res
        if out.dtype != DOUBLE:
            out = g.cast(out, DOUBLE, f"{name}_double")
        parts.append(out)
        got = ctx.origin or []
        origin.extend(got if len(got) == out.width else [None] * out.width)
    if not parts:
        raise ValueError("the ColumnTransformer outputs no columns")
    ctx.origin = origin
    return g.matrix(parts, "ct_out")


def convert_pipeline_steps(g: Graph, pipe: Any, x: Var | list[Var], ctx: Context) -> Any:
    from ._convert import convert_step

    out: Any = x
    for name, step in pipe.steps:
        if step is None or step == "passthrough":
            continue
        out = convert_step(g, name, step, out, ctx)
    return out


def convert_simple_imputer(g: Graph, imp: Any, x: Var | list[Var], ctx: Context) -> Var:
    stats = np.asarray(imp.statistics_)
    if getattr(imp, "add_indicator", False):
        raise ValueError("SimpleImputer(add_indicator=True) is not supported yet")
    mv = imp.missing_values
    if not (mv is None or (isinstance(mv, float) and mv != mv) or mv == ""):
        raise ValueError(f"SimpleImputer(missing_values={mv!r}): only NaN/None/'' mark missing values in skedge")
    cols = g.columns(x, "imp_in")
    if all(c.dtype == STRING for c in cols):
        out = []
        # missing_values="" imputes the empty string (sklearn compares X == ""); NaN/None impute what the
        # runtime feeds for a missing category
        marker = "" if isinstance(mv, str) else MISSING_CATEGORY
        empty = g.const(np.array([marker], dtype=object), "imp_marker")
        for j, c in enumerate(cols):
            fill = stats[j]
            if is_missing(fill):  # sklearn drops a column it could not learn a value for
                continue
            if (field := _category_field(ctx, j)) is not None:
                ctx.fills.setdefault(field, set()).add(str(fill))
            mask = g.op1("Equal", [c.name, empty], "imp_missing")
            f = g.const(np.array([str(fill)], dtype=object), "imp_fill")
            out.append(Var(g.op1("Where", [mask, f, c.name], "imputed"), STRING, 1))
        return g.matrix(out, "imputed_str")
    m = g.matrix(cols, "imp_in")
    keep = [j for j in range(m.width) if not _is_nan(stats[j])]
    if getattr(imp, "keep_empty_features", False):
        keep = list(range(m.width))
    m = g.select(m, keep, "imp_keep")
    if ctx.origin is not None and len(ctx.origin) == len(stats):
        ctx.origin = [ctx.origin[j] for j in keep]
    fill = np.array([0.0 if _is_nan(stats[j]) else float(stats[j]) for j in keep], dtype=np.float64)
    nan = g.op1("IsNaN", [m.name], "imp_isnan")
    return Var(g.op1("Where", [nan, g.const(fill.reshape(1, -1), "imp_fill"), m.name], "imputed"), DOUBLE, m.width)


def _is_nan(v: Any) -> bool:
    try:
        return bool(np.isnan(float(v)))
    except (TypeError, ValueError):
        return False


def _affine(g: Graph, x: Var | list[Var], sub: Any, div: Any, hint: str) -> Var:
    m = g.matrix(x, f"{hint}_in")
    name = m.name
    if sub is not None:
        name = g.op1("Sub", [name, g.const(np.asarray(sub, dtype=np.float64).reshape(1, -1), f"{hint}_sub")], hint)
    if div is not None:
        name = g.op1("Div", [name, g.const(np.asarray(div, dtype=np.float64).reshape(1, -1), f"{hint}_div")], hint)
    return Var(name, DOUBLE, m.width)


def convert_standard_scaler(g: Graph, s: Any, x: Var | list[Var], ctx: Context) -> Var:
    return _affine(g, x, s.mean_ if s.with_mean else None, s.scale_ if s.with_std else None, "std")


def convert_robust_scaler(g: Graph, s: Any, x: Var | list[Var], ctx: Context) -> Var:
    return _affine(g, x, s.center_ if s.with_centering else None, s.scale_ if s.with_scaling else None, "robust")


def convert_maxabs_scaler(g: Graph, s: Any, x: Var | list[Var], ctx: Context) -> Var:
    return _affine(g, x, None, s.scale_, "maxabs")


def convert_minmax_scaler(g: Graph, s: Any, x: Var | list[Var], ctx: Context) -> Var:
    m = g.matrix(x, "mm_in")
    # sklearn: X *= scale_; X += min_
    name = g.op1("Mul", [m.name, g.const(np.asarray(s.scale_, dtype=np.float64).reshape(1, -1), "mm_scale")], "mm")
    name = g.op1("Add", [name, g.const(np.asarray(s.min_, dtype=np.float64).reshape(1, -1), "mm_min")], "mm")
    if s.clip:
        lo, hi = s.feature_range
        name = g.op1("Clip", [name, g.const(np.float64(lo), "mm_lo"), g.const(np.float64(hi), "mm_hi")], "mm_clip")
    return Var(name, DOUBLE, m.width)


def _category_field(ctx: Context, j: int) -> str | None:
    if ctx.origin is not None and j < len(ctx.origin):
        return ctx.origin[j]
    return None


def _known(ctx: Context, field: str | None, col: Var, cats: Any) -> None:
    if field is not None and col.dtype == STRING:
        ctx.categories.setdefault(field, set()).update(str(c) for c in cats if not is_missing(c))


def convert_one_hot(g: Graph, enc: Any, x: Var | list[Var], ctx: Context) -> Var:
    if getattr(enc, "_infrequent_enabled", False):
        raise ValueError("OneHotEncoder with infrequent categories (min_frequency/max_categories) is not supported")
    if enc.handle_unknown not in ("ignore", "error", "warn"):
        raise ValueError(f"OneHotEncoder(handle_unknown={enc.handle_unknown!r}) is not supported")
    cols = g.columns(x, "ohe_in")
    drop_idx = getattr(enc, "drop_idx_", None)
    parts = []
    origin: list[str | None] = []
    for j, (c, cats) in enumerate(zip(cols, enc.categories_, strict=True)):
        field = _category_field(ctx, j)
        _known(ctx, field, c, cats)
        if enc.handle_unknown == "error" and field is not None:
            ctx.strict_category_fields.add(field)
        keep = list(range(len(cats)))
        if drop_idx is not None and drop_idx[j] is not None:
            keep.remove(int(drop_idx[j]))
        if not keep:
            continue
        eq = _match(g, c, [cats[k] for k in keep], "ohe")
        parts.append(Var(g.op1("Cast", [eq], "ohe", to=DOUBLE), DOUBLE, len(keep)))
        origin.extend([field] * len(keep))  # every indicator column is its field's (explanations group by it)
    ctx.origin = origin
    return g.matrix(parts, "ohe_out")


def convert_ordinal(g: Graph, enc: Any, x: Var | list[Var], ctx: Context) -> Var:
    if getattr(enc, "_infrequent_enabled", False):
        raise ValueError("OrdinalEncoder with infrequent categories is not supported")
    cols = g.columns(x, "ord_in")
    parts = []
    missing_code = float(enc.encoded_missing_value)
    unknown = enc.unknown_value if enc.handle_unknown == "use_encoded_value" else None
    for j, (c, cats) in enumerate(zip(cols, enc.categories_, strict=True)):
        field = _category_field(ctx, j)
        _known(ctx, field, c, cats)
        if unknown is None and field is not None:
            ctx.strict_category_fields.add(field)
        eq = _match(g, c, list(cats), "ord")
        missing_at = [k for k, v in enumerate(cats) if is_missing(v)]
        # codes by MatMul with the one-hot row; the missing category's code may be NaN, and 0 * NaN is NaN,
        # so it is 0 in the product and put in by Where afterwards
        codes = np.array([0.0 if k in missing_at else float(k) for k in range(len(cats))], dtype=np.float64)
        onehot = g.op1("Cast", [eq], "ord_onehot", to=DOUBLE)
        code = g.op1("MatMul", [onehot, g.const(codes.reshape(-1, 1), "ord_codes")], "ord_code")
        if missing_at:
            miss_row = g.op1("Cast", [g.op1("Gather", [onehot, g.const(np.array(missing_at[:1], dtype=np.int64),
                                                                          "idx")], "ord_miss_col", axis=1)],
                               "ord_is_missing", to=BOOL)
            code = g.op1("Where", [miss_row, g.const(np.array([[missing_code]]), "ord_miss"), code], "ord_code")
        seen = g.op1("Cast", [g.op1("ReduceMax", [onehot, g.const(np.array([1], dtype=np.int64), "axis1")],
                                     "ord_seen", keepdims=1)], "ord_seen_b", to=BOOL)
        fallback = float(unknown) if unknown is not None else np.nan
        if c.dtype != STRING and missing_at:
            pass  # NaN is a known category, matched by _match
        elif c.dtype != STRING:
            # a NaN never seen in training: sklearn encodes missing as encoded_missing_value
            isnan = g.op1("IsNaN", [c.name], "ord_isnan")
            code = g.op1("Where", [isnan, g.const(np.array([[missing_code]]), "ord_miss"), code], "ord_code")
            seen = g.op1("Or", [seen, isnan], "ord_seen")
        code = g.op1("Where", [seen, code, g.const(np.array([[fallback]]), "ord_unknown")], "ord")
        parts.append(Var(code, DOUBLE, 1))
    ctx.origin = None
    return g.matrix(parts, "ord_out")
