"""The model's input/output schema and the hot path from rows to ONNX feeds.

Everything that can be decided once per model (names, kinds, order, known
categories, the reusable one-row buffers) is decided in ``InputPlan.__init__``;
a call then only checks and copies values. Numbers travel as float64 ``[N, 1]``
tensors and categories as string ``[N, 1]`` tensors, one per feature
(skl2onnx's convention, DESIGN.md "The schema").

Every input either becomes feeds that mean what the caller meant, or raises
``SchemaError`` naming the row and the field. Nothing is coerced behind the
caller's back: ``"39.1"`` is not a number, ``True`` is not a measurement, and
a value numpy would quietly convert is checked by type before numpy sees it.
"""

from __future__ import annotations

import datetime
import math
import reprlib
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from ._errors import BundleError, SchemaError
from .missing import MISSING_CATEGORY, _is_pandas_na, category_text, is_missing

__all__ = [
    "Feature",
    "Schema",
    "InputPlan",
    "normalize_category",
    "is_missing",
    "SCHEMA_FORMAT",
    "F32_LIMIT",
]

SCHEMA_FORMAT = 1
KINDS = ("number", "integer", "category", "boolean")
TASKS = ("classification", "regression", "anomaly")


def normalize_category(value: Any, missing: str = MISSING_CATEGORY) -> str:
    """Map a category value to what the ONNX graph sees: missing (None, NaN, pandas' NA) becomes ``missing``
    (``MISSING_CATEGORY`` unless the schema says otherwise), a string stays itself, a number is spelled by
    ``category_text``. ``TypeError`` for anything else.

    ``""`` is a string, not a missing value: sklearn answers it as a category of its own
    (``skedge.runtime.missing`` has the whole rule).
    """
    if is_missing(value):
        return missing
    return category_text(value)


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
    # what a missing category is fed as (skedge.runtime.missing); "" in models exported before it was recorded
    missing_category: str = MISSING_CATEGORY

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
            "missing_category": self.missing_category,
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
            features = tuple(Feature.from_json(f) for f in data["features"])
            names = [f.name for f in features]
            if len(set(names)) != len(names):
                raise BundleError(f"the model's schema names a feature twice: {names}")
            # absent: a model from before the marker was recorded, whose graph took "" as missing
            missing = data.get("missing_category", "")
            if not isinstance(missing, str):
                raise BundleError(f"the model's schema has a missing_category of {type(missing).__name__}, "
                                  "expected a string")
            return cls(
                features=features,
                task=task,
                classes=tuple(classes) if classes is not None else None,
                outputs=dict(data.get("outputs") or {}),
                unknown_categories=dict(data.get("unknown_categories") or {}),
                missing_category=missing,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"the model's schema is malformed ({exc!r})") from exc


def _describe(value: Any) -> str:
    # bounded: a 100 MB string in an error message helps no one
    if isinstance(value, str):
        text = repr(value[:80]) + "..." if len(value) > 80 else repr(value)
    elif isinstance(value, list | tuple | dict | set | frozenset):
        # depth- and length-bounded: repr of a list nested 5,000 deep raised RecursionError, not SchemaError
        # (and a live model counted the caller's bad row as a failure of the model, towards a rollback)
        text = reprlib.repr(value)
    else:
        text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


_EXPECTED = {
    "number": "a finite number",
    "integer": "a whole number",
    "boolean": "a boolean",
    "category": "a string",
}
# The smallest double that float32 rounds to infinity. Tree ensembles compare in float32: sklearn refuses
# a value past it ("Input X contains infinity or a value too large for dtype('float32')") while an ONNX
# graph would route the infinity to some leaf, so the runtime refuses it too, for every model.
F32_LIMIT = 2.0**128 - 2.0**103


def _is_columnar_value(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim >= 1  # a 0-d array is a scalar that happens to be an array
    return isinstance(value, list | tuple) or (hasattr(value, "to_numpy") and hasattr(value, "dtype"))


def _is_frame(rows: Any) -> bool:
    # a pandas DataFrame, recognised without importing pandas
    return hasattr(rows, "columns") and hasattr(rows, "iloc") and hasattr(rows, "dtypes")


def _is_series(rows: Any) -> bool:
    # a pandas Series, recognised without importing pandas
    return type(rows).__name__ == "Series" and type(rows).__module__.startswith("pandas") and hasattr(rows, "to_dict")


def _is_time(value: Any) -> bool:
    # np.timedelta64 is a numpy integer and pd.Timestamp a datetime: a date or a duration is not a measurement
    return isinstance(value, np.datetime64 | np.timedelta64 | datetime.date | datetime.timedelta)


def _plain_number_type(t: type, boolean: bool) -> bool:
    if issubclass(t, bool | np.bool_):
        return boolean
    if issubclass(t, np.datetime64 | np.timedelta64):
        return False
    return t is type(None) or issubclass(t, int | float | np.integer | np.floating)


def _utf8(value: str) -> bool:
    # onnxruntime hands strings to C++ as UTF-8: a lone surrogate would escape as UnicodeEncodeError
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _tuple_getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """``row -> tuple(row[n] for n in names)`` in C (itemgetter of one name returns the value, not a tuple)."""
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    if not names:
        return lambda row: ()
    return itemgetter(*names)


class _Buffers(threading.local):
    """One thread's reusable one-row feeds: a float64 buffer and an object buffer, with a ``[1, 1]`` view
    per feature. Thread-local, so concurrent callers never share them; reused, so a row costs two slice
    assignments instead of one new array per feature."""

    def __init__(self, plan: InputPlan) -> None:
        self.nums = np.empty(len(plan._num_names), dtype=np.float64)
        self.cats = np.empty(len(plan._cat_names), dtype=object)
        self.packed = self.nums.data.cast("B")  # the buffer's bytes, which struct writes into
        self.feeds: dict[str, np.ndarray] = {}
        for j, name in enumerate(plan._num_names):
            self.feeds[name] = self.nums[j:j + 1].reshape(1, 1)
        for j, name in enumerate(plan._cat_names):
            self.feeds[name] = self.cats[j:j + 1].reshape(1, 1)


class InputPlan:
    """Checks rows against a schema and turns them into ONNX feeds.

    Built once per loaded model and safe to share between threads. ``unseen``
    counts category values the model never saw in training, per field, over
    the calls that succeeded (a call that raises counts nothing).
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.names: tuple[str, ...] = tuple(f.name for f in schema.features)
        self._n = len(self.names)
        self._name_set = frozenset(self.names)
        self._plan = tuple(
            (f.name, f.kind, f.nullable, frozenset(f.categories) if f.categories is not None else None)
            for f in schema.features
        )
        self._reject = frozenset(k for k, v in schema.unknown_categories.items() if v == "error")
        self._missing = schema.missing_category
        self.unseen: dict[str, int] = {}
        self._unseen_lock = threading.Lock()
        # the one-row fast path: numeric fields and category fields, each in a fixed order
        # numeric fields grouped by kind (numbers, integers, booleans), so that each group is checked by a
        # loop with no per-field kind test; the buffer follows the same order (feeds are keyed by name)
        groups = [tuple(f.name for f in schema.features if f.kind == kind) for kind in ("number", "integer", "boolean")]
        cats = [f for f in schema.features if f.kind == "category"]
        self._num_names = groups[0] + groups[1] + groups[2]
        self._cat_names = tuple(f.name for f in cats)
        # a field with no known categories (a bare model) never takes the fast path: it must count
        self._cat_known = tuple(frozenset(f.categories or ()) for f in cats)
        self._getters = tuple((name, itemgetter(name)) for name in self.names)
        # one C call picks every field, in that order, category fields last
        self._pick = _tuple_getter(self._num_names + self._cat_names)
        self._ends = (len(groups[0]), len(groups[0]) + len(groups[1]), len(self._num_names))
        # one C call writes every checked number into the float64 buffer (a numpy slice assignment from a
        # tuple costs three times as much); native byte order and size, as numpy's float64
        self._pack_nums = struct.Struct(f"@{len(self._num_names)}d").pack_into
        self._buffers = _Buffers(self)

    # -- entry points ----------------------------------------------------
    def feeds(self, rows: Any) -> tuple[dict[str, np.ndarray], int, bool]:
        """Return (feeds, number of rows, single-row input?). The arrays are new on every call."""
        if isinstance(rows, Mapping):
            if rows and all(_is_columnar_value(v) for v in rows.values()):
                return (*self._columns(rows), False)
            return self._one(rows), 1, True
        if _is_frame(rows):
            return (*self._frame(rows), False)
        if _is_series(rows):  # df.iloc[i]: one row, labelled by field
            return self._one(rows.to_dict()), 1, True
        if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
            raise SchemaError(
                f"expected a dict (one row), a list of dicts, a dict of columns or a DataFrame, got {_describe(rows)}"
            )
        return (*self._rows(rows if isinstance(rows, list) else list(rows)), False)

    def fast_one(self, row: Any) -> dict[str, np.ndarray] | None:
        """Feeds for one plain, valid row in this thread's reusable buffers; None when the row needs ``feeds``.

        The hot path of ``Model.predict({...})``. It accepts only what needs no further thought: a dict
        with exactly the model's fields, finite floats/ints (bools for boolean fields), known category
        strings. Anything else (missing values, unseen categories, wrong types, columns) returns None and
        goes through ``feeds``, the one place that decides and words errors. The arrays returned are
        overwritten by this thread's next call: run them before calling again.
        """
        if type(row) is not dict or len(row) != self._n:
            return None
        try:  # (one itemgetter and a local limit: this path is a quarter of a small model's one-row time)
            values = self._pick(row)
        except KeyError:
            return None
        lim = F32_LIMIT
        i, j, k = self._ends
        # the chained comparison is false for NaN, ±inf and beyond float32 (and for ints past them)
        for v in values[:i]:  # numbers: any finite float or int; not a bool
            t = type(v)
            if t is float:
                if not -lim < v < lim:
                    return None
            elif t is not int or not -lim < v < lim:
                return None
        if j > i:
            for v in values[i:j]:  # integers: an int, or a whole float
                t = type(v)
                if t is int:
                    if not -lim < v < lim:
                        return None
                elif t is not float or not -lim < v < lim or not v.is_integer():
                    return None
        if k > j:
            for v in values[j:k]:
                if type(v) is not bool:
                    return None
        b = self._buffers
        objects = b.cats
        known = self._cat_known
        for n, s in enumerate(values[k:]):
            if type(s) is not str or s not in known[n]:
                return None
            objects[n] = s  # per element: a slice assignment from a tuple costs twice as much
        self._pack_nums(b.packed, 0, *values[:k])
        return b.feeds

    def empty_feeds(self) -> dict[str, np.ndarray]:
        """Feeds of zero rows, typed as real ones: empty in, empty out (``Model`` answers without a run)."""
        return {f.name: np.empty((0, 1), dtype=object if f.kind == "category" else np.float64)
                for f in self.schema.features}

    # -- one row --------------------------------------------------------
    def _one(self, row: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self._check_keys(row, 0)
        pending: dict[str, int] = {}
        feeds: dict[str, np.ndarray] = {}
        for name, kind, nullable, cats in self._plan:
            v = row[name]
            if kind == "category":
                s = self._category(v, nullable, cats, 0, name, pending)
                arr = np.empty((1, 1), dtype=object)
                arr[0, 0] = s
                feeds[name] = arr
            else:
                feeds[name] = np.array([[self._number(v, kind, nullable, 0, name)]], dtype=np.float64)
        self._count(pending)
        return feeds

    def _check_keys(self, row: Any, i: int) -> None:
        if not isinstance(row, Mapping):
            raise SchemaError(f"row {i}: expected a dict of field values, got {_describe(row)}", row=i)
        if len(row) != self._n or not self._name_set.issuperset(row):
            for name in self.names:
                if name not in row:
                    raise SchemaError(f"row {i}, field {name!r}: missing (expected {self._n} fields: "
                                      f"{', '.join(self.names)})", row=i, field=name)
            extra = [k for k in row if k not in self._name_set]
            raise SchemaError(f"row {i}, field {_describe_key(extra[0])}: unknown field (the model takes "
                              f"{', '.join(self.names)})", row=i, field=str(extra[0]))

    def _number(self, v: Any, kind: str, nullable: bool, i: int, name: str) -> float:
        t = type(v)
        try:
            if t is float or t is int:
                x = float(v)
            elif v is None or (_is_pandas_na(v) and type(v).__name__ == "NAType"):  # pd.NaT is a datetime
                x = math.nan
            elif isinstance(v, bool | np.bool_):
                if kind != "boolean":
                    raise self._bad(i, name, kind, v)
                x = float(v)
            elif isinstance(v, int | float | np.integer | np.floating) and not _is_time(v):
                x = float(v)
            else:
                raise self._bad(i, name, kind, v)
        except OverflowError:  # an int beyond the float range
            raise self._bad(i, name, kind, v) from None
        if x != x:
            if not nullable:
                raise SchemaError(f"row {i}, field {name!r}: expected {_EXPECTED[kind]}, got a missing value "
                                  "(this field is not nullable)", row=i, field=name)
            return x
        if not -F32_LIMIT < x < F32_LIMIT:
            if math.isinf(x):
                raise self._bad(i, name, kind, v)
            raise SchemaError(f"row {i}, field {name!r}: expected {_EXPECTED[kind]} within ±3.4e38 (float32, "
                              f"where models compare), got {_describe(v)}", row=i, field=name)
        if kind == "integer" and not x.is_integer():
            raise self._bad(i, name, kind, v)
        if kind == "boolean" and x not in (0.0, 1.0):
            raise self._bad(i, name, kind, v)
        return x

    def _category(self, v: Any, nullable: bool, cats: frozenset[str] | None, i: int, name: str,
                  pending: dict[str, int]) -> str:
        if type(v) is str and v != self._missing:
            s = v
        elif is_missing(v) or (isinstance(v, str) and v == self._missing == ""):  # "": a model from before the marker
            if not nullable:
                raise SchemaError(f"row {i}, field {name!r}: expected a string, got a missing value "
                                  "(this field is not nullable)", row=i, field=name)
            return self._missing
        elif isinstance(v, str) and v == self._missing:
            raise self._reserved(i, name)
        else:
            try:
                s = category_text(v)
            except TypeError:
                raise self._bad(i, name, "category", v) from None
        if cats is None or s not in cats:
            self._unseen(s, i, name, cats)
            pending[name] = pending.get(name, 0) + 1
        return s

    def _reserved(self, i: int, name: str) -> SchemaError:
        return SchemaError(f"row {i}, field {name!r}: got {self._missing!r}, the value skedge feeds the model for a "
                           "missing category: pass None for a missing value", row=i, field=name)

    def _unseen(self, s: str, i: int, name: str, cats: frozenset[str] | None) -> None:
        """Check an unseen category value against the field's policy; raise if it cannot be fed."""
        if cats is not None and name in self._reject:
            raise SchemaError(f"row {i}, field {name!r}: expected one of {sorted(cats)}, got {_describe(s)} "
                              "(the model was trained to reject unknown categories)", row=i, field=name)
        if not _utf8(s):
            raise SchemaError(f"row {i}, field {name!r}: expected a string, got {_describe(s)} "
                              "(it is not valid Unicode: a lone surrogate)", row=i, field=name)

    def unseen_counts(self) -> dict[str, int]:
        """A copy of the unseen-category counts, taken under the lock the counting threads hold."""
        with self._unseen_lock:
            return dict(self.unseen)

    def _count(self, pending: Mapping[str, int]) -> None:
        if pending:
            with self._unseen_lock:  # dict updates from many threads must not lose counts
                for name, c in pending.items():
                    self.unseen[name] = self.unseen.get(name, 0) + c

    @staticmethod
    def _bad(i: int, name: str, kind: str, v: Any) -> SchemaError:
        return SchemaError(f"row {i}, field {name!r}: expected {_EXPECTED[kind]}, got {_describe(v)}",
                           row=i, field=name)

    # -- many rows ------------------------------------------------------
    def _rows(self, rows: Sequence[Any]) -> tuple[dict[str, np.ndarray], int]:
        n = len(rows)
        if n == 0:
            return self.empty_feeds(), 0
        cols: dict[str, Sequence[Any]] | None = None
        # Fast path in C (map): every row a mapping with exactly the model's fields. Equal length and
        # every name present means no unknown field. Any failure re-checks row by row for the message.
        try:
            if all(issubclass(t, Mapping) for t in set(map(type, rows))) and set(map(len, rows)) == {self._n}:
                cols = {name: list(map(get, rows)) for name, get in self._getters}
        except (KeyError, TypeError, IndexError):
            cols = None
        if cols is None:
            for i, row in enumerate(rows):
                self._check_keys(row, i)
            cols = {name: [row[name] for row in rows] for name in self.names}
        return self._columns(cols, checked_keys=True)

    def _frame(self, frame: Any) -> tuple[dict[str, np.ndarray], int]:
        labels = list(frame.columns)
        names = [str(c) for c in labels]
        if len(set(names)) != len(names):
            dup = next(c for c in names if names.count(c) > 1)
            raise SchemaError(f"field {dup!r}: the DataFrame has this column twice", field=dup)
        kinds = {f.name: f.kind for f in self.schema.features}
        cols: dict[str, Any] = {}  # arrays, or _Coded for text columns
        for label, name in zip(labels, names, strict=True):
            s = frame[label]
            kind = kinds.get(name)
            dk = s.dtype.kind
            if kind in ("number", "integer") and dk in "fiu" or kind == "boolean" and dk in "fiub":
                # numeric dtypes, nullable ones too: pd.NA becomes NaN here, in C
                cols[name] = s.to_numpy(dtype=np.float64, na_value=np.nan)
            elif kind == "category" and _text_dtype(s.dtype):
                # a text column: pandas hashes it in C once, and each distinct value is decided once
                # (100,000 rows of penguins: 45 ms a column as objects, 10 ms factorized)
                codes, uniques = s.factorize()
                cols[name] = _Coded(np.asarray(codes, dtype=np.intp), list(uniques))
            else:
                cols[name] = s.to_numpy(dtype=object, na_value=None)
        return self._columns(cols)

    def _columns(self, cols: Mapping[str, Any], checked_keys: bool = False) -> tuple[dict[str, np.ndarray], int]:
        if not checked_keys:
            for name in self.names:
                if name not in cols:
                    raise SchemaError(f"field {name!r}: missing column (expected {', '.join(self.names)})",
                                      field=name)
            extra = [k for k in cols if k not in self._name_set]
            if extra:
                raise SchemaError(f"field {_describe_key(extra[0])}: unknown column (the model takes "
                                  f"{', '.join(self.names)})", field=str(extra[0]))
        n = len(cols[self.names[0]]) if self.names else 0
        for name in self.names:
            if len(cols[name]) != n:
                raise SchemaError(f"field {name!r}: column has {len(cols[name])} values, but "
                                  f"{self.names[0]!r} has {n}: columns must have equal lengths", field=name)
        if n == 0:
            return self.empty_feeds(), 0
        pending: dict[str, int] = {}
        feeds: dict[str, np.ndarray] = {}
        for name, kind, nullable, cats in self._plan:
            col = cols[name]
            if kind == "category":
                feeds[name] = self._category_column(col, nullable, cats, name, pending)
            else:
                feeds[name] = self._number_column(col, kind, nullable, name)
        self._count(pending)
        return feeds, n

    def _number_column(self, col: Any, kind: str, nullable: bool, name: str) -> np.ndarray:
        x: np.ndarray | None = None
        values: list[Any] | None = None
        if isinstance(col, np.ndarray) and col.dtype.kind in "mM" and len(col):
            # datetime64 / timedelta64 (a pyarrow timestamp column): tolist() would give nanoseconds as ints
            raise self._bad(0, name, kind, col[0])
        if isinstance(col, np.ndarray) and col.ndim == 1 and (
                col.dtype.kind in "fiu" or (col.dtype.kind == "b" and kind == "boolean")):
            x = np.asarray(col, dtype=np.float64)
        else:
            values = col.tolist() if isinstance(col, np.ndarray) else list(col)
            # Check types before numpy sees the values: np.array(["1.5"], dtype=float) would convert.
            boolean = kind == "boolean"
            if all(_plain_number_type(t, boolean) for t in set(map(type, values))):
                try:
                    x = np.array(values, dtype=np.float64)  # None becomes NaN
                except (OverflowError, ValueError, TypeError):
                    x = None
        if x is not None:
            finite = (x > -F32_LIMIT) & (x < F32_LIMIT)  # false for NaN and ±inf too
            bad = ~finite
            if nullable:
                bad &= ~np.isnan(x)
            if kind == "integer":
                bad |= finite & (x != np.floor(x))
            elif kind == "boolean":
                bad |= finite & (x != 0) & (x != 1)
            if not bad.any():
                return x.reshape(-1, 1)
            i = int(np.argmax(bad))
            v = values[i] if values is not None else col[i].item()
            self._number(v, kind, nullable, i, name)  # raises with the exact message
            raise self._bad(i, name, kind, v)  # pragma: no cover - _number always raises for a bad value
        assert values is not None
        # mixed or odd values: value by value, so the error names the first bad row
        out = np.empty((len(values), 1), dtype=np.float64)
        for i, v in enumerate(values):
            out[i, 0] = self._number(v, kind, nullable, i, name)
        return out

    def _coded_column(self, col: _Coded, nullable: bool, cats: frozenset[str] | None, name: str,
                      pending: dict[str, int]) -> np.ndarray | None:
        """The feed of a factorized text column, each distinct value decided once by the rules of
        ``_category_column``; ``None`` when any value needs the row-by-row loop (which names the row)."""
        counts = np.bincount(col.codes + 1, minlength=len(col.uniques) + 1)  # [missing, uniques...]
        if counts[0] and not nullable:
            return None
        unseen = 0
        for v, c in zip(col.uniques, counts[1:].tolist(), strict=True):
            if type(v) is not str or (v == self._missing and (v != "" or not nullable)):
                return None
            if cats is None or v not in cats:
                if (cats is not None and name in self._reject) or not _utf8(v):
                    return None
                unseen += c
        if unseen:
            pending[name] = pending.get(name, 0) + unseen
        # code -1 (missing) takes the last entry: the marker skedge feeds for a missing category
        table = np.array([*col.uniques, self._missing], dtype=object)
        return table[col.codes].reshape(-1, 1)

    def _category_column(self, col: Any, nullable: bool, cats: frozenset[str] | None, name: str,
                         pending: dict[str, int]) -> np.ndarray:
        if isinstance(col, _Coded):
            fed = self._coded_column(col, nullable, cats, name, pending)
            if fed is not None:
                return fed
            col = col.values()
        values = col.tolist() if isinstance(col, np.ndarray) else list(col)
        out = np.empty((len(values), 1), dtype=object)
        # Decide once per distinct value (Counter hashes in C), not once per row. Unhashable values
        # (lists, dicts) and any bad value fall through to the row-by-row loop that names the row.
        try:
            counts: Counter[Any] | None = Counter(values)
        except TypeError:
            counts = None
        if counts is not None:
            ok, plain, unseen = True, True, 0
            for v, c in counts.items():
                if type(v) is str and v != self._missing:
                    s = v
                elif is_missing(v) or (type(v) is str and v == self._missing == ""):
                    plain = False
                    if not nullable:
                        ok = False
                        break
                    continue
                elif isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_):
                    plain = False  # a number for a category field: spelled by category_text below
                    s = category_text(v)
                else:
                    ok = False
                    break
                if cats is None or s not in cats:
                    if (cats is not None and name in self._reject) or not _utf8(s):
                        ok = False
                        break
                    unseen += c
            if ok:
                try:
                    # (a "" of a model from before the marker is the marker itself: nothing to map)
                    out[:, 0] = values if plain else [
                        v if type(v) is str else self._missing if is_missing(v) else category_text(v) for v in values]
                except TypeError:  # True hashes like 1, so Counter saw one key for both: the loop names the row
                    ok = False
            if ok:
                if unseen:
                    pending[name] = pending.get(name, 0) + unseen
                return out
        for i, v in enumerate(values):
            out[i, 0] = self._category(v, nullable, cats, i, name, pending)
        return out


@dataclass(frozen=True)
class _Coded:
    """A factorized text column: ``codes`` index ``uniques``, -1 where the value is missing."""

    codes: np.ndarray
    uniques: list[Any]

    def __len__(self) -> int:
        return len(self.codes)

    def values(self) -> list[Any]:
        return [None if c < 0 else self.uniques[c] for c in self.codes.tolist()]


def _text_dtype(dtype: Any) -> bool:
    """pandas' text dtypes (``str``, ``string``; any storage): every value is a str or missing. Object columns
    are not: pandas' factorize takes ``True`` and ``1`` for one value, which the rules tell apart."""
    return type(dtype).__name__ == "StringDtype"


def _describe_key(key: Any) -> str:
    return repr(key) if isinstance(key, str) and len(key) <= 60 else _describe(key)
