"""A Core ML model with the runtime's interface: ``predict``, ``predict_proba``, ``predict_outputs``.

Rows go through the runtime's ``InputPlan`` (the same checks and the same
missing-value mapping as the ONNX model: NaN for numbers, ``""`` for
categories) and then to a backend:

* ``evaluator``: skedge's reference evaluator (``evaluator.py``), anywhere;
* ``coreml``: coremltools' ``MLModel.predict``, i.e. Core ML itself, on macOS
  only, on the CPU (Core ML's GPU and Neural Engine compute in float16).

``load_coreml`` picks Core ML where it can run and the evaluator elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from skedge.runtime._errors import BundleError, SchemaError
from skedge.runtime._schema import InputPlan, Schema

from ._convert import META_SCHEMA
from .evaluator import ClassScores, SpecEvaluator, parse_model

__all__ = ["CoreMLModel", "evaluator_for", "load_coreml", "schema_from_spec"]

_KINDS = {"classification": ("label", "probabilities"), "regression": ("value",)}


def schema_from_spec(spec: Any, source: str = "the model") -> Schema:
    meta = dict(spec.description.metadata.userDefined)
    if META_SCHEMA not in meta:
        raise BundleError(f"{source} has no '{META_SCHEMA}' metadata: it was not exported by skedge, so its "
                          "input schema is unknown")
    try:
        return Schema.from_json(json.loads(meta[META_SCHEMA]))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{source}: its '{META_SCHEMA}' metadata is not valid JSON ({exc})") from None


class _CoreMLBackend:
    """coremltools' MLModel (Core ML itself), one row per call, as Core ML's ``prediction(from:)``."""

    def __init__(self, data: bytes, spec: Any) -> None:
        from ._proto import quiet_import

        models = quiet_import("coremltools.models")
        compute = quiet_import("coremltools").ComputeUnit
        self._model = models.MLModel(spec, compute_units=compute.CPU_ONLY)
        self.outputs = [o.name for o in spec.description.output]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        n = len(next(iter(feeds.values())))
        rows: list[dict[str, Any]] = []
        for i in range(n):
            row = {k: (str(v[i]) if v.dtype.kind in "OU" else float(v[i])) for k, v in feeds.items()}
            rows.append(self._model.predict(row))
        out: dict[str, Any] = {}
        for name in self.outputs:
            values = [r[name] for r in rows]
            first = values[0]
            if isinstance(first, dict):
                keys = tuple(first)
                out[name] = ClassScores(keys, np.array([[float(v[k]) for k in keys] for v in values]))
            elif isinstance(first, str | int | np.integer) and not isinstance(first, bool):
                out[name] = np.asarray(values, dtype=object if isinstance(first, str) else np.int64)
            else:
                out[name] = np.asarray([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
                if out[name].shape[1] == 1 and name not in ("probabilities",):
                    out[name] = out[name][:, 0]
        return out


class CoreMLModel:
    """A Core ML model ready to predict, with the same calls as ``skedge.runtime.Model``."""

    def __init__(self, data: bytes, schema: Schema | None = None, *, source: str | os.PathLike[str] = "model.mlmodel",
                 backend: str = "evaluator") -> None:
        self.source = Path(source)
        spec = parse_model(data)
        self.schema = schema if schema is not None else schema_from_spec(spec, str(self.source))
        if self.schema.task not in _KINDS:
            raise BundleError(f"{self.source}: Core ML models of skedge do classification or regression, this "
                              f"schema says {self.schema.task}")
        self._plan = InputPlan(self.schema)
        self._outputs = {k: self.schema.outputs[k] for k in _KINDS[self.schema.task]}
        if backend == "evaluator":
            self._backend: Any = SpecEvaluator(spec)
        elif backend == "coreml":
            self._backend = _CoreMLBackend(data, spec)
        else:
            raise ValueError(f"backend must be 'evaluator' or 'coreml', got {backend!r}")
        self.backend = backend
        declared = {o.name for o in spec.description.output}
        missing = [n for n in self._outputs.values() if n not in declared]
        if missing:
            raise BundleError(f"{self.source}: the model has no output {missing[0]!r} named in its schema")

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self.schema.classes

    @property
    def target(self) -> str:
        return "coreml"

    def __repr__(self) -> str:
        return f"<skedge CoreMLModel ({self.schema.task}, {self.backend}) from {self.source}>"

    def _run(self, rows: Any) -> tuple[dict[str, np.ndarray], bool]:
        feeds, _, single = self._plan.feeds(rows)
        flat = {name: arr.reshape(-1) for name, arr in feeds.items()}
        raw = self._backend.run(flat)
        out: dict[str, np.ndarray] = {}
        for kind, name in self._outputs.items():
            value = raw[name]
            if isinstance(value, ClassScores):  # a dictionary of probabilities: columns in the schema's order
                value = self._proba_columns(value)
            if kind == "label":
                value = np.asarray(value, dtype=object) if np.asarray(value).dtype.kind in "OU" else np.asarray(value)
            else:
                value = np.asarray(value, dtype=np.float64)
            out[kind] = value
        return out, single

    def _proba_columns(self, scores: ClassScores) -> np.ndarray:
        order = {str(k): i for i, k in enumerate(scores.keys)}
        try:
            return scores.values[:, [order[str(c)] for c in (self.schema.classes or ())]]
        except KeyError as exc:
            raise BundleError(f"{self.source}: the model's probabilities lack the class {exc.args[0]!r}") from None

    def predict_outputs(self, rows: Any) -> dict[str, np.ndarray]:
        """Every output at once, keyed by kind (``label`` + ``probabilities``, or ``value``)."""
        out, _ = self._run(rows)
        return out

    def predict(self, rows: Any) -> Any:
        """Labels (classification) or values (regression). One dict in, one value out."""
        out, single = self._run(rows)
        flat = out["label" if self.schema.task == "classification" else "value"]
        return flat[0].item() if single and hasattr(flat[0], "item") else (flat[0] if single else flat)

    def predict_proba(self, rows: Any) -> np.ndarray:
        """Class probabilities, ``(n, k)``, columns in ``model.classes``."""
        if self.schema.task != "classification":
            raise SchemaError(f"predict_proba needs a classifier; this model does {self.schema.task}")
        out, single = self._run(rows)
        return out["probabilities"][0] if single else out["probabilities"]


def evaluator_for(data: bytes, schema: Schema) -> CoreMLModel:
    """The reference evaluator of a spec skedge just wrote: what export checks parity with."""
    return CoreMLModel(data, schema, backend="evaluator")


def _core_ml_runs_here() -> bool:
    if sys.platform != "darwin":
        return False
    try:
        from ._proto import quiet_import

        quiet_import("coremltools.libcoremlpython")
    except ImportError:
        return False
    return True


def load_coreml(path: str | os.PathLike[str], *, backend: str | None = None) -> CoreMLModel:
    """A ``model.mlmodel`` (or a bundle directory holding one) with ``predict`` / ``predict_proba``.

    The schema comes from the model's metadata. ``backend``: ``"coreml"`` (macOS),
    ``"evaluator"`` (anywhere), or None for Core ML where it runs and the evaluator elsewhere.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "model.mlmodel"
    if not p.exists():
        raise BundleError(f"{p} does not exist")
    data = p.read_bytes()
    if not data:
        raise BundleError(f"{p} is empty")
    chosen = backend or ("coreml" if _core_ml_runs_here() else "evaluator")
    return CoreMLModel(data, None, source=p, backend=chosen)
