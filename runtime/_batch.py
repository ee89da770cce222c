"""Engine-neutral batch scoring: a columnar batch in, the outputs as columns out.

The same scorer runs in one process (``skedge predict``), in every Dask worker
(``skedge.runtime.dask``) and under any other engine that can call a function
on a batch of columns. Three rules keep those answers identical bit for bit:

- one onnxruntime session per process, cached here (``scorer_for``), so every
  task on a worker shares it and nothing is loaded per task;
- one intra-op thread: onnxruntime splits a batch across threads by its size and
  the thread count, which moved float32 probabilities by up to 4e-7 between one and
  two threads (issue #7) — with one thread a row's bits do not depend on the batch,
  file, worker or machine that scores it;
- the model travels as bytes with the sha256 they must hash to (``ModelBytes``),
  checked again where the session is built.

A batch is a dict of columns (lists or numpy arrays), a pandas DataFrame or a
pyarrow Table/RecordBatch. pandas and pyarrow are recognised by their type's
module, never imported: the runtime needs numpy and onnxruntime only.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ._bundle import MODEL_FILES, read_model
from ._errors import BundleError, SchemaError
from ._model import Model
from ._schema import Schema

__all__ = [
    "INTRA_OP_THREADS",
    "ModelBytes",
    "BatchScorer",
    "feature_columns",
    "scorer_for",
    "installed_scorer",
    "forget_scorer",
]

INTRA_OP_THREADS = 1
# Output kinds in the order their columns appear (ARCHITECTURE.md "Output conventions").
_KINDS = ("label", "value", "probabilities", "score")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ModelBytes:
    """A model as bytes plus what they must hash to: what is shipped to workers.

    ``sha256`` is the manifest's entry for a bundle (so the bytes are bound to the
    bundle that was verified) or the file's own hash for a bare ``.onnx``/``.ort``.
    ``schema`` is the manifest's schema; ``None`` for a bare file, whose schema is
    in its own metadata.
    """

    model_bytes: bytes = field(repr=False)
    sha256: str
    schema: Mapping[str, Any] | None = field(repr=False)
    source: str
    target: str = "onnx"
    name: str | None = None
    version: str | None = None

    @classmethod
    def read(cls, path: str | os.PathLike[str], *, target: str = "onnx") -> ModelBytes:
        """Read a bundle directory (every file's hash checked) or a bare ``.onnx``/``.ort`` file."""
        p = Path(path)
        bundle, data, target = read_model(p, target)
        if bundle is None:
            return cls(data, _sha256(data), None, str(p), target, p.stem, None)
        # Only the model file matters for scoring: checked against the manifest as read, and again
        # on every worker the bytes are sent to.
        model_file = MODEL_FILES[target]
        manifest = bundle.manifest
        return cls(data, str(bundle.files[model_file]["sha256"]), manifest.get("schema") or {}, str(p / model_file),
                   target, _str_or_none(manifest.get("name")), _str_or_none(manifest.get("version")))

    @cached_property
    def key(self) -> str:
        """Names this model (bytes and schema) in per-process caches and Dask plugin names."""
        schema = json.dumps(self.schema, sort_keys=True, default=str)
        return _sha256(f"{self.sha256}\0{self.target}\0{schema}".encode())[:32]

    def check(self) -> None:
        """Raise ``BundleError`` unless the bytes still hash to ``sha256`` (run where they arrive)."""
        got = _sha256(self.model_bytes)
        if got != self.sha256:
            raise BundleError(f"{self.source}: the model bytes received hash to sha256 {got[:8]}…, expected "
                              f"{self.sha256[:8]}…: they were corrupted on the way")

    def __dask_tokenize__(self) -> tuple[str, str]:
        # Dask would otherwise hash the whole model for every graph it builds.
        return ("skedge.ModelBytes", self.key)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class BatchScorer:
    """Scores columnar batches with one model on one intra-op thread. Thread-safe.

        scorer = BatchScorer.load("models/penguins/1.0.0")
        scorer.score({"island": ["Biscoe", "Dream"], "bill_length_mm": [39.1, 45.0], ...})
        # {"prediction": array([...]), "proba_Adelie": array([...]), ...}
    """

    def __init__(self, payload: ModelBytes) -> None:
        payload.check()
        schema = Schema.from_json(payload.schema) if payload.schema is not None else None
        # threads=1: never split a batch, so a row's bits do not depend on the batch it came in
        self._model = Model(payload.model_bytes, schema, source=Path(payload.source), target=payload.target,
                            threads=INTRA_OP_THREADS)
        self.payload = payload
        self.schema: Schema = self._model.schema
        self._kinds = tuple(k for k in _KINDS if k in self.schema.outputs)
        self.columns: tuple[str, ...] = tuple(self._column_names())

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, target: str = "onnx") -> BatchScorer:
        return cls(ModelBytes.read(path, target=target))

    def __repr__(self) -> str:
        return f"<skedge BatchScorer {self.payload.name or ''} {self.payload.version or ''} from {self.payload.source}>"

    @property
    def unseen_categories(self) -> dict[str, int]:
        """Category values never seen in training, counted per field since the scorer was built."""
        return self._model.unseen_categories

    def _value_width(self) -> int:
        """Outputs of a regressor: more than one for a multi-output model (its columns prediction_0, ...)."""
        name = self.schema.outputs.get("value")
        for o in self._model._session.get_outputs():
            if o.name == name and len(o.shape) == 2 and isinstance(o.shape[1], int):
                return int(o.shape[1])
        return 1

    def _column_names(self) -> list[str]:
        width = self._value_width()
        if width > 1:
            return [f"prediction_{j}" for j in range(width)]
        names = ["prediction"]
        if "probabilities" in self._kinds:
            names += [f"proba_{c}" for c in self.schema.classes or ()]
        if "score" in self._kinds:
            names.append("score")
        return names

    def _label_dtype(self) -> np.dtype[Any]:
        if self.schema.task == "regression":
            return np.dtype(np.float64)
        if self.schema.task == "anomaly":
            return np.dtype(np.int64)
        classes = self.schema.classes or ()
        if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            return np.dtype(np.int64)
        return np.dtype(object)

    def empty(self) -> dict[str, np.ndarray]:
        """The output columns of zero rows, with the dtypes a real batch gets."""
        out = {name: np.empty(0, dtype=np.float64) for name in self.columns}
        if "prediction" in out:
            out["prediction"] = np.empty(0, dtype=self._label_dtype())
        return out

    def score(self, batch: Any) -> dict[str, np.ndarray]:
        """Score a batch: ``prediction``, then ``proba_<class>`` (classifiers) or ``score`` (anomaly).

        Columns other than the model's fields are ignored; a row that does not fit
        raises ``SchemaError`` naming the row (0-based, within this batch) and the field.
        """
        cols = feature_columns(batch, self.schema)
        if not cols or len(next(iter(cols.values()))) == 0:
            return self.empty()
        raw = self._model.predict_outputs(cols)
        label_kind = "value" if self.schema.task == "regression" else "label"
        if self.columns[0] != "prediction":  # a multi-output regressor: a column per output
            values = np.asarray(raw["value"], dtype=np.float64)
            return {name: np.ascontiguousarray(values[:, j]) for j, name in enumerate(self.columns)}
        out = {"prediction": np.asarray(raw[label_kind]).reshape(-1).astype(self._label_dtype(), copy=False)}
        if "probabilities" in raw:
            proba = np.asarray(raw["probabilities"], dtype=np.float64)
            for j, name in enumerate(self.columns[1:1 + proba.shape[1]]):
                out[name] = np.ascontiguousarray(proba[:, j])
        if "score" in raw:
            out["score"] = np.asarray(raw["score"], dtype=np.float64).reshape(-1)
        return out


# -- columns from whatever the batch is ----------------------------------------

def _module(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def feature_columns(batch: Any, schema: Schema) -> dict[str, Any]:
    """The model's fields from a batch, as arrays ``InputPlan`` takes; other columns are left alone."""
    if isinstance(batch, Mapping):
        present: Any = batch.keys()
        get = batch.__getitem__
    elif _module(batch) == "pandas" and hasattr(batch, "columns"):
        present = {str(c) for c in batch.columns}
        get = batch.__getitem__
    elif _module(batch) == "pyarrow" and hasattr(batch, "column_names"):
        present = set(batch.column_names)
        get = batch.column
    else:
        raise SchemaError("expected a batch of columns (a dict of arrays, a pandas DataFrame or a pyarrow "
                          f"Table), got {type(batch).__name__}")
    out: dict[str, Any] = {}
    for f in schema.features:
        if f.name not in present:
            raise SchemaError(f"field {f.name!r}: missing column (the model takes "
                              f"{', '.join(schema.names)})", field=f.name)
        out[f.name] = _as_array(get(f.name), f.kind)
    return out


def _as_array(values: Any, kind: str) -> Any:
    lib = _module(values)
    if lib == "pyarrow" and hasattr(values, "to_numpy"):
        # numbers with nulls come out as float64 with NaN; strings and booleans with nulls as
        # object arrays holding None: both are what the runtime reads as missing
        return values.to_numpy(zero_copy_only=False)
    if lib == "pandas" and hasattr(values, "to_numpy"):
        dkind = getattr(values.dtype, "kind", "O")
        if dkind in "iuf" or (dkind == "b" and kind == "boolean"):
            if kind != "category":
                # nullable Int64/Float64/boolean hold pd.NA, which the runtime does not know: NaN instead
                return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return values.to_numpy(dtype=object, na_value=None)
    return values


# -- one scorer per process -----------------------------------------------------

_SCORERS: dict[str, BatchScorer] = {}
_LOCK = threading.Lock()


def scorer_for(payload: ModelBytes) -> BatchScorer:
    """The process's scorer for this model, built (hashes checked) on first use."""
    scorer = _SCORERS.get(payload.key)
    if scorer is not None and scorer.payload.model_bytes is not payload.model_bytes:
        payload.check()  # the key is what the bytes claim; other bytes under it must prove it
    if scorer is None:
        with _LOCK:
            scorer = _SCORERS.get(payload.key)
            if scorer is None:
                scorer = _SCORERS[payload.key] = BatchScorer(payload)
    return scorer


def installed_scorer(key: str) -> BatchScorer:
    """The scorer ``scorer_for`` built in this process for ``key``; ``BundleError`` if there is none."""
    try:
        return _SCORERS[key]
    except KeyError:
        raise BundleError(f"model {key} is not installed in this process: on Dask, the skedge worker "
                          "plugin installs it (skedge.runtime.dask registers it before scoring)") from None


def forget_scorer(key: str) -> None:
    """Drop the process's scorer for ``key`` (its session is freed when no task holds it)."""
    with _LOCK:
        _SCORERS.pop(key, None)
