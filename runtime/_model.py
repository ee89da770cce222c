"""A loaded model: its session, predictions, self-verification.

Session options, chosen on purpose and measured in bench/bench_runtime.py:

* One session per model, with one intra-op thread and sequential execution. A
  single row is a few microseconds of work: a thread pool would cost more to
  wake than it saves, so none is created.
* Large batches are cut into chunks that run concurrently on that same session
  from a small shared thread pool (``Session.run`` releases the GIL and is safe
  to call from many threads). With a core free this halves the time (penguins,
  100,000 rows: 0.13 s vs 0.26 s); on a busy machine it is never worse than one
  thread, whereas onnxruntime's own intra-op pool spins and took twice as long
  as one thread there (2.1 s vs 1.0 s, 100-tree forest). Each row's arithmetic
  is that of a one-row call, so a batch answers bit for bit like its rows.
* ``load(..., threads=1)`` never splits: for a caller that is itself parallel
  (a Dask worker thread, a web server's workers).
* onnxruntime's logger is kept quiet: a model that cannot load becomes a
  ``BundleError`` that says what to do, not a screen of C++ log lines.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._bundle import MODEL_FILES, Bundle, read_model
from ._errors import BundleError, SchemaError
from ._parity import ParityRow, compare_outputs
from ._schema import InputPlan, Schema

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["Model", "load", "BATCH_THREADS_FROM"]

# From this many rows a call is split across threads (chunks of at least half this). Below it, one run
# on the calling thread: handing a chunk to a pool thread costs tens of µs; at 1,024 penguin rows two
# chunks already took half the time of one run.
BATCH_THREADS_FROM = 1024
_ONNX_META_SCHEMA = "skedge.schema"
_INPUT_TYPES = {"category": "tensor(string)", "number": "tensor(double)", "integer": "tensor(double)",
                "boolean": "tensor(double)"}

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _batch_pool() -> ThreadPoolExecutor:
    """The process's pool for batch chunks, made on first use (a one-row app never starts a thread)."""
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_pid != pid:  # a forked child inherits the pool object but not its threads
        from concurrent.futures import ThreadPoolExecutor

        with _pool_lock:
            if _pool is None or _pool_pid != pid:
                _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="skedge-batch")
                _pool_pid = pid
    return _pool


def _ort_message(exc: Exception) -> str:
    """onnxruntime's message without its C++ source location and signature."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    # "/onnxruntime_src/...h:46 void onnxruntime::f(...) <message>" -> "<message>"
    text = re.sub(r"^\S+\.(?:h|cc|cpp):\d+ .*?\) (?=[A-Z])", "", text)
    return text or type(exc).__name__


def _load_hint(text: str, version: str) -> str:
    """What a person can do about a model onnxruntime refused, by the kind of refusal."""
    m = re.search(r"Opset (\d+) is under development.*?domain (\S+) is till opset (\d+)", text)
    if m:
        return (f"it needs opset {m.group(1)} of {m.group(2)}, and this onnxruntime ({version}) runs up to "
                f"opset {m.group(3)}: upgrade onnxruntime, or export the model again with an older opset")
    m = re.search(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)", text)
    if m:
        return (f"it has ONNX IR version {m.group(1)}, and this onnxruntime ({version}) reads up to "
                f"{m.group(2)}: upgrade onnxruntime, or export the model again with an older onnx")
    if any(w in text for w in ("is not a registered function/op", "NOT_IMPLEMENTED",
                               "Could not find an implementation")):
        return (f"it uses an operator this onnxruntime ({version}) does not have: upgrade onnxruntime, "
                "or export the model again for an older opset")
    if "protobuf parsing failed" in text or "No graph was found" in text or "model verification failed" in text:
        return "the file is not a readable model (truncated or corrupt): export it again or restore it"
    return "the file is corrupt or was not written by skedge's exporter: export it again or restore it"


def _session(model_bytes: bytes, source: Path) -> Any:
    import onnxruntime as ort  # imported on first load: `import skedge.runtime` stays cheap

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 4  # fatal only: failures are raised as BundleError with their cause
    try:
        return ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind types; name the file and the cause
        text = _ort_message(exc)
        raise BundleError(f"{source} cannot be loaded: {_load_hint(text, ort.__version__)} "
                          f"(onnxruntime: {text})") from None


def _check_inputs(session: Any, schema: Schema, source: Path) -> None:
    """The model's inputs must be the schema's features, with the types the runtime feeds."""
    inputs = {i.name: i.type for i in session.get_inputs()}
    for f in schema.features:
        got = inputs.pop(f.name, None)
        if got is None:
            raise BundleError(f"{source}: the schema names the feature {f.name!r}, but the model has no such "
                              "input: the manifest and the model do not belong together; export again")
        if got != _INPUT_TYPES[f.kind]:
            raise BundleError(f"{source}: input {f.name!r} is {got}, but a {f.kind} feature is fed as "
                              f"{_INPUT_TYPES[f.kind]}: the model was not exported by this skedge")
    if inputs:
        raise BundleError(f"{source}: the model takes input {sorted(inputs)[0]!r}, which its schema does not "
                          "describe: the manifest and the model do not belong together; export again")


class Model:
    """A model ready to predict. Thread-safe: one instance can serve many threads at once."""

    def __init__(self, model_bytes: bytes, schema: Schema | None, *, source: Path, bundle: Bundle | None = None,
                 target: str = "onnx", threads: int | None = None) -> None:
        self.source = source
        self.bundle = bundle
        self.target = target
        self._session = _session(model_bytes, source)
        if schema is None:  # a bare model file describes itself in its metadata
            schema = _schema_from_metadata(self._session.get_modelmeta().custom_metadata_map, source)
        self.schema = schema
        _check_inputs(self._session, schema, source)
        self._plan = InputPlan(schema)
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._threads = threads or os.cpu_count() or 1
        outputs = {o.name for o in self._session.get_outputs()}
        missing = [name for name in schema.outputs.values() if name not in outputs]
        if missing:
            raise BundleError(f"{source}: the model has no output {missing[0]!r} named in its schema")
        self._outputs = dict(schema.outputs)
        self._out_kinds = tuple(self._outputs)
        self._predict_kind = "value" if schema.task == "regression" else "label"
        self._predict_names = [self._outputs[self._predict_kind]]
        self._proba_names = [self._outputs["probabilities"]] if "probabilities" in self._outputs else []
        # The C-level run: InferenceSession.run re-validates the input names on every call, which the
        # input plan already guarantees (checked once above). Worth ~1.5 µs of a ~12 µs one-row call.
        inner = getattr(self._session, "_sess", None)
        self._run_raw = inner.run if inner is not None and callable(getattr(inner, "run", None)) \
            else self._session.run

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
        """Category values never seen in training, counted per field since load (successful calls only)."""
        return self._plan.unseen_counts()

    def __repr__(self) -> str:
        return f"<skedge Model {self.name} {self.version or ''} ({self.schema.task}, {self.target}) from {self.source}>"

    # -- running ----------------------------------------------------------
    def _run_once(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            out: list[np.ndarray] = self._run_raw(names, feeds, None)
        except Exception as exc:  # valid feeds that the model cannot run: the model is at fault
            raise BundleError(f"{self.source}: onnxruntime could not run the model on valid input "
                              f"({_ort_message(exc)}); export it again") from None
        return out

    def _run(self, names: list[str], feeds: dict[str, np.ndarray], n: int) -> list[np.ndarray]:
        chunks = min(self._threads, n // (BATCH_THREADS_FROM // 2)) if n >= BATCH_THREADS_FROM else 1
        if chunks <= 1:
            return self._run_once(names, feeds)
        bounds = np.linspace(0, n, chunks + 1).astype(int)
        parts = [{k: v[a:b] for k, v in feeds.items()} for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        pool = _batch_pool()
        results = [f.result() for f in [pool.submit(self._run_once, names, p) for p in parts]]
        return [np.concatenate([r[j] for r in results]) for j in range(len(names))]

    def _outputs_for(self, rows: Any, kinds: tuple[str, ...] | list[str]) -> tuple[list[np.ndarray], bool]:
        feeds, n, single = self._plan.feeds(rows)
        return self._run([self._outputs[k] for k in kinds], feeds, n), single

    # -- prediction -------------------------------------------------------
    def predict_outputs(self, rows: Any) -> dict[str, np.ndarray]:
        """Every output at once, keyed by kind: label, probabilities, value, score."""
        out, _ = self._outputs_for(rows, self._out_kinds)
        return {k: _flat(k, v) for k, v in zip(self._out_kinds, out, strict=True)}

    def predict(self, rows: Any) -> Any:
        """Labels (classification, anomaly: 1 normal / -1 outlier) or values (regression).

        One dict in, one value out (a Python scalar); anything else in, an array out.
        Labels are the graph's, computed as sklearn computes them for that estimator: the first maximum of
        the probabilities (an exact tie goes to the first class), or for a binary linear model the sign of
        the decision, which an argmax over probabilities would get wrong where expit rounds to 0.5.
        """
        feeds = self._plan.fast_one(rows)
        if feeds is not None:
            return self._run_once(self._predict_names, feeds)[0].item()
        (out,), single = self._outputs_for(rows, (self._predict_kind,))
        return out.item() if single else _flat(self._predict_kind, out)

    def predict_proba(self, rows: Any) -> np.ndarray:
        """Class probabilities, ``(n, k)``, columns in ``model.classes``; one dict in, ``(k,)`` out."""
        if not self._proba_names:
            raise SchemaError(f"predict_proba needs a classifier; this model does {self.schema.task}")
        feeds = self._plan.fast_one(rows)
        if feeds is not None:
            return self._run_once(self._proba_names, feeds)[0][0]
        (out,), single = self._outputs_for(rows, ("probabilities",))
        proba = np.asarray(out, dtype=np.float64)
        return proba[0] if single else proba

    def decision_function(self, rows: Any) -> Any:
        """Anomaly score as sklearn's ``decision_function``: negative means outlier."""
        if "score" not in self._outputs:
            raise SchemaError(f"decision_function needs an anomaly model; this model does {self.schema.task}")
        (out,), single = self._outputs_for(rows, ("score",))
        return out.item() if single else _flat("score", out)

    # -- verification -----------------------------------------------------
    def verify(self) -> ParityRow:
        """Run the bundle's golden vectors through this model and compare with the sklearn reference."""
        if self.bundle is None:
            raise BundleError(f"{self.source} is a bare model file: verify needs a bundle with golden.json")
        golden = self.bundle.golden()
        try:
            rows, expected = golden["rows"], golden["expected"]
        except KeyError as exc:
            raise BundleError(f"{self.bundle.path}/golden.json has no {exc.args[0]!r}: the file is corrupt") from None
        got = self.predict_outputs(rows)
        return compare_outputs(self.target, got, expected, golden.get("tolerance"))


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
        data = json.loads(meta[_ONNX_META_SCHEMA])
    except json.JSONDecodeError as exc:
        raise BundleError(f"{source}: its '{_ONNX_META_SCHEMA}' metadata is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{source}: its '{_ONNX_META_SCHEMA}' metadata is not a JSON object")
    return Schema.from_json(data)


def load(path: str | os.PathLike[str], *, target: str = "onnx", threads: int | None = None) -> Model:
    """Load a bundle directory or a bare ``.onnx``/``.ort`` file.

    ``target`` picks the bundle's ``model.onnx`` ("onnx") or ``model.ort`` ("ort"); every file the
    manifest lists is checked against its size and sha256. ``threads``:
    how many chunks a large batch may run in at once (default: the CPU count; 1 never splits).
    """
    p = Path(path)
    bundle, data, target = read_model(p, target)
    if bundle is None:  # a bare file: its schema is in its own metadata
        return Model(data, None, source=p, target=target, threads=threads)
    model_file = MODEL_FILES[target]
    bundle.check_all(skip=model_file)
    schema_json = bundle.manifest.get("schema")
    if not isinstance(schema_json, dict):
        raise BundleError(f"{p}/manifest.json has no schema: the manifest is corrupt; export the model again")
    return Model(data, Schema.from_json(schema_json), source=p / model_file, bundle=bundle, target=target,
                 threads=threads)
