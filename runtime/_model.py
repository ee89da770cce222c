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
* ``load(..., threads=1)`` never runs on another thread (its chunks run one after
  the other): for a caller that is itself parallel (a Dask worker thread, a web
  server's workers).
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

    from .explain import Explanation
    from .monitor import Monitor

__all__ = ["Model", "load", "check_manifest", "BATCH_THREADS_FROM"]

# From this many rows a call is split across threads (chunks of at least half this). Below it, one run
# on the calling thread: handing a chunk to a pool thread costs tens of µs; at 1,024 penguin rows two
# chunks already took half the time of one run.
BATCH_THREADS_FROM = 1024
CHUNK_ROWS = 8192
_ONNX_META_SCHEMA = "skedge.schema"
# a graph whose intermediates grow large per row (kNN holds [rows, training rows, features]) states how many
# rows one run may take; the exporter writes it (exporter/onnx/_convert.py run_limits)
_ONNX_META_ROWS = "skedge.rows_per_run"
_INPUT_TYPES = {"category": "tensor(string)", "number": "tensor(double)", "integer": "tensor(double)",
                "boolean": "tensor(double)"}

_ORT_DTYPES: dict[str, Any] = {"tensor(string)": object, "tensor(double)": np.float64, "tensor(float)": np.float32,
                               "tensor(int64)": np.int64, "tensor(bool)": np.bool_}

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


# What each output kind must be (type, rank), so that a schema naming the wrong output for a kind (outputs
# swapped) is a BundleError at load, not a wrong answer or a traceback at the first call. Labels are the
# classes themselves: strings, integers, booleans or floats, one per row.
_LABEL_TYPES = ("tensor(string)", "tensor(int64)", "tensor(int32)", "tensor(bool)", "tensor(double)", "tensor(float)")
_OUTPUT_TYPES = {"label": (_LABEL_TYPES, (1, 2)), "probabilities": (("tensor(double)",), (2,)),
                 "value": (("tensor(double)",), (1, 2)), "score": (("tensor(double)",), (1, 2))}
# what predict() reads, per task (a classifier without probabilities, such as LinearSVC, may still be exported)
_TASK_OUTPUTS = {"classification": ("label",), "regression": ("value",), "anomaly": ("label",)}


def _check_outputs(session: Any, schema: Schema, source: Path) -> None:
    outs = {o.name: o for o in session.get_outputs()}
    kinds = dict(schema.outputs)
    need = _TASK_OUTPUTS.get(schema.task, ())
    absent = [k for k in need if k not in kinds]
    if absent:
        raise BundleError(f"{source}: the schema names no {absent[0]!r} output, which a {schema.task} model has: "
                          "the schema is corrupt; export the model again")
    if len(set(kinds.values())) != len(kinds):
        raise BundleError(f"{source}: the schema names one output for two kinds ({kinds}): the schema is corrupt; "
                          "export the model again")
    for kind, name in kinds.items():
        if kind not in _OUTPUT_TYPES:
            raise BundleError(f"{source}: the schema names an output of unknown kind {kind!r}: the schema is "
                              "corrupt; export the model again")
        if name not in outs:
            raise BundleError(f"{source}: the model has no output {name!r} named in its schema")
        types, ranks = _OUTPUT_TYPES[kind]
        shape = outs[name].shape
        got_rank = len(shape) if isinstance(shape, list | tuple) else None
        width = shape[1] if got_rank == 2 else None
        wrong = outs[name].type not in types or (got_rank is not None and got_rank not in ranks) or (
            kind == "probabilities" and isinstance(width, int) and schema.classes is not None
            and width != len(schema.classes)) or (kind == "label" and isinstance(width, int) and width != 1)
        if wrong:
            raise BundleError(f"{source}: the schema takes output {name!r} ({outs[name].type}, shape {shape}) as the "
                              f"{kind}, which is {' or '.join(types)} of rank {' or '.join(map(str, ranks))}: the "
                              "schema's outputs are mixed up; export the model again")


def _first_difference(a: Any, b: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """(path, a's value, b's value) of the first place two JSON values differ, for a message naming both."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = _first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
            if d is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and not all(
            isinstance(x, str | int | float | bool) or x is None for x in a + b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = _first_difference(x, y, f"{where}[{i}]")
            if d is not None:
                return d
        return None
    return None if a == b else (where or "(the whole schema)", a, b)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _same_schema(given: Schema, own: Schema, source: Path, what: str = "the manifest") -> None:
    d = _first_difference(given.to_json(), own.to_json())
    if d is not None:
        where, a, b = d
        raise BundleError(f"{source}: {what} says schema {where} is {_short(a)}, the model itself says "
                          f"{_short(b)}: the manifest was changed after export or belongs to another model; "
                          "export the model again or restore it")


def check_manifest(manifest: dict[str, Any], schema: Schema, source: Path) -> None:
    """The manifest's own copies of task, classes and outputs must be the model's (``schema``, from model.onnx)."""
    own = schema.to_json()
    for key in ("task", "classes", "outputs"):
        if key in manifest and manifest[key] != own[key]:
            raise BundleError(f"{source}: manifest.json says {key} is {_short(manifest[key])}, the model itself "
                              f"says {_short(own[key])}: the manifest was changed after export or belongs to "
                              "another model; export the model again or restore it")


class Model:
    """A model ready to predict. Thread-safe: one instance can serve many threads at once."""

    def __init__(self, model_bytes: bytes, schema: Schema | None, *, source: Path, bundle: Bundle | None = None,
                 target: str = "onnx", threads: int | None = None) -> None:
        self.source = source
        self.bundle = bundle
        self.target = target
        self._session = _session(model_bytes, source)
        meta = self._session.get_modelmeta().custom_metadata_map
        if schema is None:  # a bare model file describes itself in its metadata
            schema = _schema_from_metadata(meta, source)
        elif _ONNX_META_SCHEMA in meta:
            # the model file is the authority: a schema given beside it (a manifest's) must be the model's own
            _same_schema(schema, _schema_from_metadata(meta, source), source)
        self.schema = schema
        _check_inputs(self._session, schema, source)
        _check_outputs(self._session, schema, source)
        self._plan = InputPlan(schema)
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._threads = threads or os.cpu_count() or 1
        self._chunk_rows = _rows_per_run(meta.get(_ONNX_META_ROWS), source)
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
        # drift monitors (runtime/monitor.py): an empty tuple is the whole cost of predicting without one
        self._monitors: tuple[Monitor, ...] = ()
        self._monitors_lock = threading.Lock()

    # -- description ------------------------------------------------------
    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self.schema.classes

    @property
    def name(self) -> str:
        return str(self.bundle.manifest.get("name")) if self.bundle else self.source.stem

    @property
    def digest(self) -> str | None:
        """sha256 of the bundle's manifest.json: the bundle's identity (None for a bare model file)."""
        return self.bundle.digest if self.bundle else None

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
        if n == 0:
            return self._empty(names)
        threads = min(self._threads, n // (BATCH_THREADS_FROM // 2)) if n >= BATCH_THREADS_FROM else 1
        # and never more than CHUNK_ROWS rows in one run, even on one thread: a large forest's graph holds
        # [rows, trees, classes] doubles between its gather and its ordered sum (bounded memory), and chunks
        # that stay in cache ran faster (40,000 rows of the bench forest: 8,192-row chunks 3.6 s, one run 4.3 s)
        chunks = max(threads, -(-n // self._chunk_rows))
        if chunks <= 1:
            return self._run_once(names, feeds)
        bounds = np.linspace(0, n, chunks + 1).astype(int)
        parts = [{k: v[a:b] for k, v in feeds.items()} for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        if threads <= 1:  # threads=1 never hands work to another thread
            results = [self._run_once(names, p) for p in parts]
        else:
            pool = _batch_pool()
            results = [f.result() for f in [pool.submit(self._run_once, names, p) for p in parts]]
        return [np.concatenate([r[j] for r in results]) for j in range(len(names))]

    def _empty(self, names: list[str]) -> list[np.ndarray]:
        """Zero rows out for zero rows in, typed as the graph declares, without a run: not every kernel
        takes an empty batch, and an empty batch has one answer."""
        declared = {o.name: o for o in self._session.get_outputs()}
        out = []
        for name in names:
            o = declared[name]
            width = [d if isinstance(d, int) else 0 for d in o.shape[1:]]
            if name == self._outputs.get("probabilities"):
                width = [len(self.schema.classes or ())]
            out.append(np.empty((0, *width), dtype=_ORT_DTYPES.get(o.type, np.float64)))
        return out

    def _outputs_for(self, rows: Any, kinds: tuple[str, ...] | list[str]) -> tuple[list[np.ndarray], bool]:
        feeds, n, single = self._plan.feeds(rows)
        return self._run([self._outputs[k] for k in kinds], feeds, n), single

    # -- prediction -------------------------------------------------------
    def _watched(self, rows: Any, kinds: tuple[str, ...]) -> tuple[list[np.ndarray], bool]:
        """``_outputs_for`` with the attached monitors counting the call (its answer is run too if not asked)."""
        pk = self._predict_kind
        names = [self._outputs[k] for k in kinds] + ([] if pk in kinds else [self._outputs[pk]])
        at = kinds.index(pk) if pk in kinds else len(kinds)
        one = self._plan.fast_one(rows)
        if one is not None:
            out = self._run_once(names, one)
            answer = _one(out[at])
            for m in self._monitors:
                m._observe_one(rows, answer)
            return out[:len(kinds)], True
        feeds, n, single = self._plan.feeds(rows)
        out = self._run(names, feeds, n)
        answers = _flat(pk, out[at])
        for m in self._monitors:
            m._observe(feeds, n, answers)
        return out[:len(kinds)], single

    def monitor(self, window: int = 1000, *, blocks: int = 10) -> Monitor:
        """Count every prediction from now on against the bundle's profile.json; ``report()`` gives drift over
        the last ``window`` rows (``skedge.runtime.monitor``). ``close()`` detaches it."""
        from .monitor import PROFILE_FILE, Monitor, Profile

        where = self.bundle.path if self.bundle is not None else self.source
        if self.bundle is None or not self.bundle.has(PROFILE_FILE):
            raise BundleError(f"{where} has no {PROFILE_FILE}: it was exported before skedge wrote drift profiles "
                              "(or is a bare model file); export it again to monitor it")
        raw = self.bundle.read(PROFILE_FILE)  # hash-checked against the manifest
        import hashlib

        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise BundleError(f"{where}/{PROFILE_FILE} is not valid JSON: the file is corrupt") from None
        if not isinstance(data, dict):
            raise BundleError(f"{where}/{PROFILE_FILE} is not a JSON object: the file is corrupt")
        profile = Profile.from_json(data, self.schema, where=f"{where}/{PROFILE_FILE}",
                                    digest=hashlib.sha256(raw).hexdigest())
        mon = Monitor(profile, self.schema, window=window, blocks=blocks, detach=self._detach)
        with self._monitors_lock:  # copy on write: a predicting thread reads the tuple without a lock
            self._monitors = (*self._monitors, mon)
        return mon

    def _detach(self, mon: Monitor) -> None:
        with self._monitors_lock:
            self._monitors = tuple(m for m in self._monitors if m is not mon)

    def predict_outputs(self, rows: Any) -> dict[str, np.ndarray]:
        """Every output at once, keyed by kind: label, probabilities, value, score."""
        out, _ = self._watched(rows, self._out_kinds) if self._monitors else self._outputs_for(rows, self._out_kinds)
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
            answer = _one(self._run_once(self._predict_names, feeds)[0])
            if self._monitors:  # drift counters (runtime/monitor.py): without one, this check is their whole cost
                for m in self._monitors:
                    m._observe_one(rows, answer)
            return answer
        if self._monitors:
            (out,), single = self._watched(rows, (self._predict_kind,))
            return _one(out) if single else _flat(self._predict_kind, out)
        (out,), single = self._outputs_for(rows, (self._predict_kind,))
        return _one(out) if single else _flat(self._predict_kind, out)

    def predict_proba(self, rows: Any) -> np.ndarray:
        """Class probabilities, ``(n, k)``, columns in ``model.classes``; one dict in, ``(k,)`` out."""
        if not self._proba_names:
            if self.schema.task == "classification":  # exported from a pipeline sklearn gives no predict_proba
                raise SchemaError("this classifier answers labels only: its scikit-learn pipeline has no "
                                  "predict_proba (LinearSVC, hard voting, ...); use predict")
            raise SchemaError(f"predict_proba needs a classifier; this model does {self.schema.task}")
        if self._monitors:
            (out,), single = self._watched(rows, ("probabilities",))
            proba = np.asarray(out, dtype=np.float64)
            return proba[0] if single else proba
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
        (out,), single = self._watched(rows, ("score",)) if self._monitors else self._outputs_for(rows, ("score",))
        return out.item() if single else _flat("score", out)

    def explain(self, rows: Any) -> Explanation:
        """Per-feature contributions to each row's probabilities (or value), computed by the bundle's
        explain.onnx: ``bias + contributions.sum(axis=1) == output`` (``skedge.runtime.explain``)."""
        from .explain import explain

        return explain(self, rows)

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
        # through a plan of its own: the golden rows' unseen categories are the exporter's edge rows, not
        # traffic, and must not show in ``unseen_categories``
        feeds, n, _ = InputPlan(self.schema).feeds(rows)
        out = self._run([self._outputs[k] for k in self._out_kinds], feeds, n)
        got = {k: _flat(k, v) for k, v in zip(self._out_kinds, out, strict=True)}
        return compare_outputs(self.target, got, expected, golden.get("tolerance"))


def _rows_per_run(text: str | None, source: Path) -> int:
    """The model's own bound on the rows of one run, if it states one; never above CHUNK_ROWS."""
    if text is None:
        return CHUNK_ROWS
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 9 and int(text) > 0):
        raise BundleError(f"{source}: its '{_ONNX_META_ROWS}' metadata is {text[:40]!r}, not a positive whole "
                          "number: the file is corrupt")
    return min(int(text), CHUNK_ROWS)


def _one(arr: np.ndarray) -> Any:
    """One row's answer: a Python scalar, or the row of values of a multi-output regressor."""
    a = arr if type(arr) is np.ndarray else np.asarray(arr)  # (onnxruntime's outputs are arrays already)
    return a.item() if a.size == 1 else a.reshape(-1)


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
    except RecursionError:
        raise BundleError(f"{source}: its '{_ONNX_META_SCHEMA}' metadata is nested too deeply to be a schema: "
                          "the file is corrupt or hostile; export it again") from None
    if not isinstance(data, dict):
        raise BundleError(f"{source}: its '{_ONNX_META_SCHEMA}' metadata is not a JSON object")
    return Schema.from_json(data)


def load(path: str | os.PathLike[str], *, target: str = "onnx", threads: int | None = None,
         manifest_sha256: str | None = None, trust: Any = None, name: str | None = None,
         alias: str | None = None, state_dir: str | os.PathLike[str] | None = None) -> Model:
    """Load a bundle directory or a bare ``.onnx``/``.ort`` file (or ``name@alias`` of a registry).

    ``target`` picks the bundle's ``model.onnx`` ("onnx") or ``model.ort`` ("ort"); every file the
    manifest lists is checked against its size and sha256, and the manifest's schema, classes and outputs
    against the schema the model file carries. ``manifest_sha256``: the bundle identity the app expects
    (``model.digest``, printed by ``skedge export`` and ``skedge inspect``); another manifest is refused.
    ``threads``: how many chunks a large batch may run in at once (default: the CPU count; 1 never splits).
    ``trust``: an Ed25519 public key (PEM path or bytes): the bundle must carry a valid ``signature.json``
    by it, checked before anything else, and the session is built from the very bytes verified
    (``skedge.runtime.signing``). ``name``/``alias``: ``path`` is a registry and the bundle is what the
    alias names (``skedge.runtime.registry``). ``state_dir``: where a reader with ``trust`` keeps the
    sequences it accepted, to refuse a replayed older one (default ``$SKEDGE_STATE_DIR``, else
    ``$XDG_STATE_HOME/skedge``).
    """
    p = Path(path)
    accept = found = None
    bundle: Bundle | None
    if name is not None or alias is not None:
        from .registry import resolve

        found = resolve(p, name, alias, trust=trust, state_dir=state_dir)
        p, accept = found.path, found.accept
        manifest_sha256 = manifest_sha256 or found.digest
    if trust is not None:
        from .signing import read_model_signed

        # a bundle named by path is replay-checked by its release; one named in a registry by its alias record
        # (or asked for by its exact version)
        bundle, data, accept_release = read_model_signed(p, trust, target, state_dir=state_dir,
                                                         check_release=found is None)
        accept = accept or accept_release
    else:
        bundle, data, target = read_model(p, target)
    if found is not None and bundle is not None and str(bundle.manifest.get("version")) != found.version:
        raise BundleError(f"{p}: the registry names it {found.name}@{found.version}, its manifest says version "
                          f"{bundle.manifest.get('version')}: the registry was changed; run skedge fsck")
    if bundle is None:  # a bare file: its schema is in its own metadata
        if manifest_sha256 is not None:
            raise BundleError(f"{p} is a bare model file: it has no manifest.json whose sha256 could be checked")
        return Model(data, None, source=p, target=target, threads=threads)
    if manifest_sha256 is not None and bundle.digest != manifest_sha256.strip().lower():
        raise BundleError(f"{p}/manifest.json has sha256 {bundle.digest}, expected {manifest_sha256}: this is "
                          "not the bundle you asked for (another export, or a changed manifest): restore it, or expect "
                          "the new bundle's sha256 (skedge inspect prints it)")
    model_file = MODEL_FILES[target]
    bundle.check_all(skip=model_file)
    schema_json = bundle.manifest.get("schema")
    if not isinstance(schema_json, dict):
        raise BundleError(f"{p}/manifest.json has no schema: the manifest is corrupt; export the model again")
    manifest_schema = Schema.from_json(schema_json)
    model = Model(data, manifest_schema, source=p / model_file, bundle=bundle, target=target, threads=threads)
    if _ONNX_META_SCHEMA not in model._session.get_modelmeta().custom_metadata_map:
        raise BundleError(f"{p / model_file} carries no '{_ONNX_META_SCHEMA}' metadata, so the manifest's schema "
                          "cannot be checked against the model: it was not exported by skedge; export it again")
    check_manifest(bundle.manifest, model.schema, p / model_file)
    if accept is not None:  # only a model that passed every check moves the reader's high-water mark
        accept()
    return model
