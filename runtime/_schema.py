"""The model's input/output schema and the hot path from rows to ONNX feeds.

Everything that can be decided once per model (names, kinds, order, known
categories) is decided in ``InputPlan.__init__``; ``feeds`` then only checks
and copies values. Numbers travel as float64 ``[N, 1]`` tensors and
categories as string ``[N, 1]`` tensors, one per feature (skl2onnx's
convention, DESIGN.md "The schema").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._errors import BundleError, SchemaError

__all__ = [
    "Feature",
    "Schema",
    "InputPlan",
    "normalize_category",
    "is_missing",
    "SCHEMA_FORMAT",
]

SCHEMA_FORMAT = 1
KINDS = ("number", "integer", "category", "boolean")
TASKS = ("classification", "regression", "anomaly")


def is_missing(value: Any) -> bool:
    """True for the values skedge treats as missing: None, NaN and the empty string."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    if isinstance(value, str):
        return value == ""
    return False


def normalize_category(value: Any) -> str:
    """Map a category value to what the ONNX graph sees: missing becomes ``""``.

    The one place that decides what a missing category looks like; the trainer's
    feature layer calls it before fitting and the runtime before predicting, so
    both sides agree (DESIGN.md: a missing string fed as ``''`` where sklearn
    saw NaN gave 0.46 vs 0.94).
    """
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {_describe(value)}")


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    nullable: bool = True
    categories: tuple[str, ...] | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "nullable": self.nullable}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.stats:
            out["stats"] = dict(self.stats)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Feature:
        kind = data.get("kind")
        if kind not in KINDS:
            raise BundleError(f"schema feature {data.get('name')!r}: unknown kind {kind!r}; expected one of {KINDS}")
        cats = data.get("categories")
        return cls(
            name=str(data["name"]),
            kind=kind,
            nullable=bool(data.get("nullable", True)),
            categories=tuple(str(c) for c in cats) if cats is not None else None,
            stats=dict(data.get("stats") or {}),
        )


@dataclass(frozen=True)
class Schema:
    """Inputs (one ``Feature`` each, in order) and what the model answers."""

    features: tuple[Feature, ...]
    task: str
    classes: tuple[Any, ...] | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    # per category field: "ignore" (one-hot zeros, counted) or "error" (sklearn would raise, so do we)
    unknown_categories: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "task": self.task,
            "features": [f.to_json() for f in self.features],
            "classes": list(self.classes) if self.classes is not None else None,
            "outputs": dict(self.outputs),
            "unknown_categories": dict(sorted(self.unknown_categories.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schema:
        try:
            fmt = data.get("format")
            if fmt != SCHEMA_FORMAT:
                raise BundleError(
                    f"schema format {fmt!r} is not supported by this skedge (supports {SCHEMA_FORMAT}); "
                    "upgrade skedge or re-export the model"
                )
            task = data["task"]
            if task not in TASKS:
                raise BundleError(f"schema task {task!r} is not one of {TASKS}")
            classes = data.get("classes")
            return cls(
                features=tuple(Feature.from_json(f) for f in data["features"]),
                task=task,
                classes=tuple(classes) if classes is not None else None,
                outputs=dict(data.get("outputs") or {}),
                unknown_categories=dict(data.get("unknown_categories") or {}),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"the model's schema is malformed ({exc!r})") from exc


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


_NUMERIC_KINDS = frozenset({"number", "integer", "boolean"})
_EXPECTED = {
    "number": "a finite number",
    "integer": "a whole number",
    "boolean": "a boolean",
    "category": "a string",
}


def _is_columnar_value(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray) or (
        hasattr(value, "to_numpy") and hasattr(value, "dtype")
    )


def _object_array(col: Any) -> np.ndarray:
    values = list(col)
    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        arr[i] = v
    return arr


class InputPlan:
    """Checks rows against a schema and turns them into ONNX feeds.

    Built once per loaded model. ``unseen`` counts category values the model
    never saw in training, per field (the one-hot encoders ignore them).
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.names: tuple[str, ...] = tuple(f.name for f in schema.features)
        self._name_set = frozenset(self.names)
        self._plan = tuple(
            (f.name, f.kind, f.nullable, frozenset(f.categories) if f.categories is not None else None)
            for f in schema.features
        )
        self.unseen: dict[str, int] = {}
        self._reject = frozenset(k for k, v in schema.unknown_categories.items() if v == "error")

    # -- entry point -----------------------------------------------------
    def feeds(self, rows: Any) -> tuple[dict[str, np.ndarray], int, bool]:
        """Return (feeds, number of rows, single-row input?)."""
        if isinstance(rows, Mapping):
            if rows and all(_is_columnar_value(v) for v in rows.values()):
                return (*self._columns(rows), False)
            return self._one(rows), 1, True
        if hasattr(rows, "columns") and hasattr(rows, "iloc"):  # a pandas DataFrame, without importing pandas
            cols = {str(c): rows[c].to_numpy() for c in rows.columns}
            return (*self._columns(cols), False)
        if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
            raise SchemaError(
                f"expected a dict (one row), a list of dicts, a dict of columns or a DataFrame, got {_describe(rows)}"
            )
        return (*self._rows(list(rows)), False)

    # -- one row: the hot path ------------------------------------------
    def _one(self, row: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self._check_keys(row, 0)
        feeds: dict[str, np.ndarray] = {}
        for name, kind, nullable, cats in self._plan:
            v = row[name]
            if kind == "category":
                s = self._category(v, nullable, cats, 0, name)
                feeds[name] = np.array([[s]], dtype=object)
            else:
                feeds[name] = np.array([[self._number(v, kind, nullable, 0, name)]], dtype=np.float64)
        return feeds

    def _check_keys(self, row: Any, i: int) -> None:
        if not isinstance(row, Mapping):
            raise SchemaError(f"row {i}: expected a dict of field values, got {_describe(row)}", row=i)
        if len(row) != len(self.names) or not self._name_set.issuperset(row):
            for name in self.names:
                if name not in row:
                    raise SchemaError(f"row {i}, field {name!r}: missing (expected {len(self.names)} fields: "
                                      f"{', '.join(self.names)})", row=i, field=name)
            extra = [k for k in row if k not in self._name_set]
            raise SchemaError(f"row {i}, field {extra[0]!r}: unknown field (the model takes "
                              f"{', '.join(self.names)})", row=i, field=str(extra[0]))

    def _number(self, v: Any, kind: str, nullable: bool, i: int, name: str) -> float:
        t = type(v)
        if t is float or t is int:
            x = float(v)
        elif v is None:
            x = math.nan
        elif isinstance(v, bool | np.bool_):
            if kind != "boolean":
                raise self._bad(i, name, kind, v)
            x = float(v)
        elif isinstance(v, int | float | np.integer | np.floating):
            x = float(v)
        else:
            raise self._bad(i, name, kind, v)
        if x != x:
            if not nullable:
                raise SchemaError(f"row {i}, field {name!r}: expected {_EXPECTED[kind]}, got a missing value "
                                  "(this field is not nullable)", row=i, field=name)
            return x
        if x in (math.inf, -math.inf):
            raise SchemaError(f"row {i}, field {name!r}: expected {_EXPECTED[kind]}, got {_describe(v)}",
                              row=i, field=name)
        if kind == "integer" and not x.is_integer():
            raise self._bad(i, name, kind, v)
        if kind == "boolean" and x not in (0.0, 1.0):
            raise self._bad(i, name, kind, v)
        return x

    def _category(self, v: Any, nullable: bool, cats: frozenset[str] | None, i: int, name: str) -> str:
        if type(v) is str and v:
            s = v
        else:
            try:
                s = normalize_category(v)
            except TypeError:
                raise self._bad(i, name, "category", v) from None
            if s == "" and not nullable:
                raise SchemaError(f"row {i}, field {name!r}: expected a string, got a missing value "
                                  "(this field is not nullable)", row=i, field=name)
            if s == "":
                return s
        if cats is not None and s not in cats:
            if name in self._reject:
                raise SchemaError(f"row {i}, field {name!r}: expected one of {sorted(cats)}, got {_describe(v)}",
                                  row=i, field=name)
            self.unseen[name] = self.unseen.get(name, 0) + 1
        return s

    @staticmethod
    def _bad(i: int, name: str, kind: str, v: Any) -> SchemaError:
        return SchemaError(f"row {i}, field {name!r}: expected {_EXPECTED[kind]}, got {_describe(v)}",
                           row=i, field=name)

    # -- many rows ------------------------------------------------------
    def _rows(self, rows: Sequence[Any]) -> tuple[dict[str, np.ndarray], int]:
        for i, row in enumerate(rows):
            self._check_keys(row, i)
        cols = {name: [row[name] for row in rows] for name in self.names}
        return self._columns(cols, checked_keys=True)

    def _columns(self, cols: Mapping[str, Any], checked_keys: bool = False) -> tuple[dict[str, np.ndarray], int]:
        if not checked_keys:
            for name in self.names:
                if name not in cols:
                    raise SchemaError(f"field {name!r}: missing column (expected {', '.join(self.names)})",
                                      field=name)
            extra = [k for k in cols if k not in self._name_set]
            if extra:
                raise SchemaError(f"field {extra[0]!r}: unknown column (the model takes {', '.join(self.names)})",
                                  field=str(extra[0]))
        lengths = {len(cols[name]) for name in self.names}
        if len(lengths) > 1:
            raise SchemaError(f"columns have different lengths: {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        if n == 0:
            raise SchemaError("no rows to predict (an empty batch)")
        feeds: dict[str, np.ndarray] = {}
        for name, kind, nullable, cats in self._plan:
            col = cols[name]
            if kind == "category":
                feeds[name] = self._category_column(col, nullable, cats, name)
            else:
                feeds[name] = self._number_column(col, kind, nullable, name)
        return feeds, n

    def _number_column(self, col: Any, kind: str, nullable: bool, name: str) -> np.ndarray:
        try:
            arr = np.asarray(col)
        except (ValueError, TypeError):  # ragged: nested values inside the column
            arr = _object_array(col)
        if arr.ndim != 1:
            arr = _object_array(col)
        if arr.dtype.kind in "fiu" or (arr.dtype.kind == "b" and kind == "boolean"):
            x = arr.astype(np.float64)
            bad = ~np.isfinite(x)
            if nullable:
                bad &= ~np.isnan(x)
            if kind == "integer":
                bad |= np.isfinite(x) & (x != np.floor(x))
            elif kind == "boolean":
                bad |= np.isfinite(x) & (x != 0) & (x != 1)
            if bad.any():
                i = int(np.argmax(bad))
                self._number(arr[i].item(), kind, nullable, i, name)  # raises with the exact message
                raise self._bad(i, name, kind, arr[i].item())
            return x.reshape(-1, 1)
        # object or mixed column: check value by value; the error names the first bad row
        out = np.empty((len(arr), 1), dtype=np.float64)
        for i, v in enumerate(arr.tolist()):
            out[i, 0] = self._number(v, kind, nullable, i, name)
        return out

    def _category_column(self, col: Any, nullable: bool, cats: frozenset[str] | None, name: str) -> np.ndarray:
        values = col.tolist() if isinstance(col, np.ndarray) and col.ndim == 1 else list(col)
        out = np.empty((len(values), 1), dtype=object)
        for i, v in enumerate(values):
            out[i, 0] = self._category(v, nullable, cats, i, name)
        return out
