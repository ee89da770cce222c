"""A loaded model: sessions, predictions, self-verification."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ._bundle import MODEL_FILES, Bundle, read_bundle
from ._errors import BundleError, SchemaError
from ._parity import ParityRow, compare_outputs
from ._schema import InputPlan, Schema

__all__ = ["Model", "load", "BATCH_THREADS_FROM"]

# Below this many rows a call runs on the single-threaded session: for one row,
# waking a thread pool costs more than the work (measured in bench/single_row.py).
BATCH_THREADS_FROM = 2048
_ONNX_META_SCHEMA = "skedge.schema"


def _session(model_bytes: bytes, threads: int, source: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads == 1:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind types; name the file and the cause
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ""
        if "opset" in text.lower() or "not_implemented" in text.lower() or "NOT_IMPLEMENTED" in text:
            hint = (f" This onnxruntime ({ort.__version__}) cannot run the model's operators or opset: "
                    "upgrade onnxruntime, or export with an older opset.")
        raise BundleError(f"{source} cannot be loaded by onnxruntime: {text}.{hint}") from None


class Model:
    """A model ready to predict. Thread-safe: one instance can serve many threads."""

    def __init__(self, model_bytes: bytes, schema: Schema | None, *, source: Path, bundle: Bundle | None = None,
                 target: str = "onnx") -> None:
        self.source = source
        self.bundle = bundle
        self.target = target
        self._bytes = model_bytes
        self._single = _session(model_bytes, 1, source)
        if schema is None:  # a bare model file describes itself in its metadata
            schema = _schema_from_metadata(self._single.get_modelmeta().custom_metadata_map, source)
        self.schema = schema
        self._plan = InputPlan(schema)
        self._batch: Any = None
        self._batch_lock = threading.Lock()
        outputs = {o.name for o in self._single.get_outputs()}
        self._outputs = {kind: name for kind, name in schema.outputs.items() if name in outputs}
        missing = [name for name in schema.outputs.values() if name not in outputs]
        if missing:
            raise BundleError(f"{source}: the model has no output {missing[0]!r} named in its schema")
        self._out_kinds = tuple(self._outputs)
        self._out_names = [self._outputs[k] for k in self._out_kinds]

    # -- description ------------------------------------------------------
    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self.schema.classes

    @property
    def name(self) -> str:
        return str(self.bundle.manifest.get("name")) if self.bundle else self.source.stem

    @property
    def version(self) -> str | None:
        return str(self.bundle.manifest.get("version")) if self.bundle else None

    @property
    def unseen_categories(self) -> dict[str, int]:
        """Category values never seen in training, counted per field since load."""
        return dict(self._plan.unseen)

    def __repr__(self) -> str:
        return f"<skedge Model {self.name} {self.version or ''} ({self.schema.task}, {self.target}) from {self.source}>"

    # -- prediction -------------------------------------------------------
    def _session_for(self, n: int) -> Any:
        if n < BATCH_THREADS_FROM:
            return self._single
        if self._batch is None:
            with self._batch_lock:
                if self._batch is None:
                    self._batch = _session(self._bytes, os.cpu_count() or 1, self.source)
        return self._batch

    def _run(self, rows: Any, kinds: tuple[str, ...]) -> tuple[list[np.ndarray], bool]:
        feeds, n, single = self._plan.feeds(rows)
        names = [self._outputs[k] for k in kinds]
        return self._session_for(n).run(names, feeds), single

    def predict_outputs(self, rows: Any) -> dict[str, np.ndarray]:
        """Every output at once, keyed by kind: label, probabilities, value, score."""
        out, _ = self._run(rows, self._out_kinds)
        return {k: _flat(k, v) for k, v in zip(self._out_kinds, out, strict=True)}

    def predict(self, rows: Any) -> Any:
        """Labels (classification, anomaly: 1 normal / -1 outlier) or values (regression).

        One dict in, one value out; anything else in, an array out.
        """
        kind = "value" if self.schema.task == "regression" else "label"
        (out,), single = self._run(rows, (kind,))
        flat = _flat(kind, out)
        return flat[0].item() if single else flat

    def predict_proba(self, rows: Any) -> np.ndarray:
        """Class probabilities, ``(n, k)``, columns in ``model.classes``."""
        if "probabilities" not in self._outputs:
            raise SchemaError(f"predict_proba needs a classifier; this model does {self.schema.task}")
        (out,), single = self._run(rows, ("probabilities",))
        proba = np.asarray(out, dtype=np.float64)
        return proba[0] if single else proba

    def decision_function(self, rows: Any) -> Any:
        """Anomaly score as sklearn's ``decision_function``: negative means outlier."""
        if "score" not in self._outputs:
            raise SchemaError(f"decision_function needs an anomaly model; this model does {self.schema.task}")
        (out,), single = self._run(rows, ("score",))
        flat = _flat("score", out)
        return flat[0].item() if single else flat

    # -- verification -----------------------------------------------------
    def verify(self) -> ParityRow:
        """Run the bundle's golden vectors through this model and compare with the sklearn reference."""
        if self.bundle is None:
            raise BundleError(f"{self.source} is a bare model file: verify needs a bundle with golden.json")
        golden = self.bundle.golden()
        got = self.predict_outputs(golden["rows"])
        return compare_outputs(self.target, got, golden["expected"], golden.get("tolerance"))


def _flat(kind: str, arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if kind in ("label", "value", "score") and a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if kind == "label" and a.dtype.kind in "OU":
        a = a.astype(object)
    return a


def _schema_from_metadata(meta: dict[str, str], source: Path) -> Schema:
    if _ONNX_META_SCHEMA not in meta:
        raise BundleError(f"{source} has no '{_ONNX_META_SCHEMA}' metadata: it was not exported by skedge, "
                          "so its input schema is unknown")
    try:
        return Schema.from_json(json.loads(meta[_ONNX_META_SCHEMA]))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{source}: its '{_ONNX_META_SCHEMA}' metadata is not valid JSON ({exc})") from None


def load(path: str | os.PathLike[str], *, target: str = "onnx") -> Model:
    """Load a bundle directory (every file's sha256 checked) or a bare ``.onnx``/``.ort`` file.

    ``target`` picks the bundle's ``model.onnx`` ("onnx") or ``model.ort`` ("ort").
    """
    p = Path(path)
    if p.is_dir():
        if target not in MODEL_FILES:
            raise BundleError(f"unknown target {target!r}; expected one of {sorted(MODEL_FILES)}")
        bundle = read_bundle(p)
        model_file = MODEL_FILES[target]
        if not bundle.has(model_file):
            raise BundleError(f"{p} has no {model_file}")
        schema = Schema.from_json(bundle.manifest.get("schema") or {})
        return Model((p / model_file).read_bytes(), schema, source=p / model_file, bundle=bundle, target=target)
    if not p.exists():
        raise BundleError(f"{p} does not exist")
    if p.suffix not in (".onnx", ".ort"):
        raise BundleError(f"{p} is neither a bundle directory nor a .onnx/.ort model file")
    data = p.read_bytes()
    if not data:
        raise BundleError(f"{p} is empty")
    return Model(data, None, source=p, target="ort" if p.suffix == ".ort" else "onnx")
