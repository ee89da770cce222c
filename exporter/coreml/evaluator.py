"""A reference evaluator for the Core ML spec subset skedge emits, in numpy.

Core ML cannot predict on Linux. This module evaluates a ``.mlmodel`` protobuf
the way the Core ML format's message definitions say (the commented ``.proto``
files, published as the "Core ML Format Reference" of the coremltools
documentation). It is written from those statements, not from skedge's
converter, and it imports nothing from the converter. What it does not
implement, or what the format leaves open, it refuses with ``BundleError``
instead of guessing. The statements each message is evaluated by:

* ``Pipeline`` / ``PipelineClassifier`` / ``PipelineRegressor``: "a pipeline
  consisting of one or more models"; models run in order and pass features by
  name (a later model may reuse a name: it then replaces the value).
* ``FeatureVectorizer``: "puts one or more features into a single array. The
  ordering of features in the output array is determined by inputList". Each
  column contributes its values; ``inputDimensions`` must equal the column's
  size (1 for a Double) or the model is refused.
* ``Imputer``: "If ReplaceValue is set, then missing values of that type are
  replaced with the corresponding value ... if replaceDoubleValue is set to NaN
  ... a single NaN double value ... is replaced by imputedDoubleValue ... if the
  input is an array of doubles, then any instances of NaN in the array is
  replaced with the corresponding value in imputedDoubleArray". Refused when no
  ReplaceValue is set.
* ``Scaler``: "f(x) = scaleValue * (x + shiftValue)"; defaults 1 and 0; a single
  value applies to every element of an array.
* ``OneHotEncoder``: "Transforms a categorical feature into an array. The array
  will be all zeros expect a single entry of one" at the category's index;
  ``IgnoreUnknown``: "Output will be all zeros for unknown values";
  ``ErrorOnUnknown`` raises. ``outputSparse`` is refused.
* ``GLMRegressor``: one output per ``weights`` row, ``w . x + offset``; only
  ``NoTransform``.
* ``ArrayFeatureExtractor``: "extracts the value at that index from its array
  input", for each of ``extractIndex`` in order (one index: a Double).
* ``SupportVectorRegressor``: the kernels as SVM.proto states them (linear
  ``x^T x'``, RBF ``exp(-gamma ||x - x'||^2)``, polynomial
  ``(gamma x^T x' + c)^degree``, sigmoid ``tanh(gamma x^T x' + c)``); the value
  is libsvm's decision ``sum alpha_i K(x, sv_i) - rho`` (the format names rho
  without a formula; coremltools' SVR converter writes ``rho = -intercept``).
  Dense support vectors only.
* ``GLMClassifier``: two classes, ``ReferenceClass`` ("first class is the
  reference class") with ``Logit``: ``p(class 1) = 1 / (1 + e^-(w . x + b))``,
  ``p(class 0) = 1 - p(class 1)``. More classes, ``OneVsRest`` and ``Probit``
  are refused: the format does not define them exactly.
* ``TreeEnsembleRegressor`` / ``TreeEnsembleClassifier``: "A branch node
  evaluates a value according to a behavior; if true, the node identified by
  true_child_node_id is evaluated next ... A leaf node adds the evaluation
  value to the base prediction value"; evaluation values are "a sparse vector,
  with evaluationIndex being the index". Comparisons are in double (the
  thresholds are ``double``); a NaN input follows the true child exactly when
  ``missingValueTracksTrueChild``. The trees' values are added to the base in
  tree-id order, one tree after another. Post-evaluation transforms, for
  classifiers only: ``NoTransform``; and, for reading specs written by
  coremltools' own converter (skedge never writes them), ``Regression_Logistic``
  on one dimension (class 1 gets ``1 / (1 + e^-s)``, class 0 the rest) and
  ``Classification_SoftMax``. A classifier's label is the class with the
  highest probability; on an exact tie the format does not say which class
  wins, so the evaluator raises.
* ``NeuralNetwork`` (specification version <= 3, rank-5 mapping of a ``[C]``
  array to ``[1, 1, C, 1, 1]``), four layers: ``SoftmaxLayer``
  ("x_i <- e^{x_i} / sum_i e^{x_i}" along the channel axis; computed after
  subtracting the maximum, the same value without overflow),
  ``LoadConstantLayer`` (shape ``[C, 1, 1]``, float32 weights), ``MaxLayer`` /
  ``MinLayer`` ("the elementwise maximum/minimum over the inputs"; NaN, which
  the format leaves open, raises). Arithmetic is float64 here; Core ML runs
  neural networks in float32 on the CPU, within 1e-7 of this.

Values travel as numpy arrays over a batch of N rows: Double ``(N,)`` float64,
Int64 ``(N,)`` int64, String ``(N,)`` object, a ``[k]`` MultiArray ``(N, k)``
float64, a dictionary ``ClassScores``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from skedge.runtime._errors import BundleError, SchemaError

from ._proto import proto

__all__ = ["SpecEvaluator", "ClassScores", "FType", "parse_model"]

Env = dict[str, Any]
Step = Callable[[Env], None]


@dataclass(frozen=True)
class FType:
    """A feature type the evaluator implements: double, int64, string, array (width), dict (key kind)."""

    kind: str
    width: int = 1
    key: str = ""


@dataclass(frozen=True)
class ClassScores:
    """A dictionary output (class label -> probability) over a batch: ``values[:, i]`` belongs to ``keys[i]``."""

    keys: tuple[Any, ...]
    values: np.ndarray


def _refuse(where: str, what: str) -> BundleError:
    return BundleError(f"Core ML spec, {where}: {what} is not implemented by skedge's reference evaluator")


def _only(msg: Any, allowed: set[str], where: str) -> None:
    """Refuse any set field outside ``allowed`` (proto3 lists only fields that differ from their default)."""
    for fd, _ in msg.ListFields():
        if fd.name not in allowed:
            raise _refuse(where, f"field {type(msg).__name__}.{fd.name}")


def parse_model(data: bytes) -> Any:
    m = proto().Model_pb2.Model()
    try:
        m.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError; name the cause
        raise BundleError(f"not a Core ML model: the protobuf does not parse ({exc})") from None
    return m


def _ftype(fd: Any, where: str) -> FType:
    ft = fd.type
    here = f"{where}, feature {fd.name!r}"
    _only(ft, {"int64Type", "doubleType", "stringType", "multiArrayType", "dictionaryType"}, here)
    which = ft.WhichOneof("Type")
    if which == "doubleType":
        return FType("double")
    if which == "int64Type":
        return FType("int64")
    if which == "stringType":
        return FType("string")
    if which == "multiArrayType":
        arr = ft.multiArrayType
        _only(arr, {"shape", "dataType"}, here)
        dtypes = proto().FeatureTypes_pb2.ArrayFeatureType
        if arr.dataType not in (dtypes.DOUBLE, dtypes.FLOAT32):
            raise _refuse(here, f"MultiArray data type {arr.dataType}")
        if len(arr.shape) != 1 or arr.shape[0] < 1:
            raise _refuse(here, f"MultiArray shape {list(arr.shape)} (only one-dimensional arrays)")
        return FType("array", int(arr.shape[0]))
    if which == "dictionaryType":
        key = ft.dictionaryType.WhichOneof("KeyType")
        return FType("dict", key="int64" if key == "int64KeyType" else "string")
    raise _refuse(here, f"feature type {which}")


def _get(env: Env, name: str, t: FType, where: str) -> Any:
    if name not in env:
        raise BundleError(f"Core ML spec, {where}: input {name!r} is produced by no earlier model")
    v = env[name]
    ok = {
        "double": lambda: isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind == "f",
        "int64": lambda: isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "iu",
        "string": lambda: isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "OU",
        "array": lambda: isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[1] == t.width,
        "dict": lambda: isinstance(v, ClassScores),
    }[t.kind]()
    if not ok:
        shape = getattr(v, "shape", type(v).__name__)
        raise BundleError(f"Core ML spec, {where}: feature {name!r} should be {t.kind}"
                          f"{f'[{t.width}]' if t.kind == 'array' else ''}, got {shape}")
    return v


class _Model:
    """One compiled model: its typed inputs and outputs and the function that computes them."""

    def __init__(self, m: Any, where: str) -> None:
        _only(m, {"specificationVersion", "description", m.WhichOneof("Type") or "-"}, where)
        self.where = where
        d = m.description
        _only(d, {"input", "output", "predictedFeatureName", "predictedProbabilitiesName", "metadata"},
              f"{where}.description")
        self.version = int(m.specificationVersion)
        self.inputs = {fd.name: _ftype(fd, where) for fd in d.input}
        self.outputs = {fd.name: _ftype(fd, where) for fd in d.output}
        self.predicted = d.predictedFeatureName
        self.predicted_proba = d.predictedProbabilitiesName
        kind = m.WhichOneof("Type")
        builders: dict[str, Callable[[Any], Step]] = {
            "pipeline": self._pipeline,
            "pipelineClassifier": lambda x: self._pipeline(x.pipeline),
            "pipelineRegressor": lambda x: self._pipeline(x.pipeline),
            "featureVectorizer": self._vectorizer,
            "imputer": self._imputer,
            "scaler": self._scaler,
            "oneHotEncoder": self._one_hot,
            "glmRegressor": self._glm_regressor,
            "glmClassifier": self._glm_classifier,
            "treeEnsembleRegressor": self._tree_regressor,
            "treeEnsembleClassifier": self._tree_classifier,
            "neuralNetwork": self._neural_network,
            "arrayFeatureExtractor": self._array_extractor,
            "supportVectorRegressor": self._svr,
        }
        if kind not in builders:
            raise _refuse(where, f"model type {kind!r}")
        self.kind = kind
        self.step = builders[kind](getattr(m, kind))

    # -- helpers ---------------------------------------------------------
    def _one(self, table: Mapping[str, FType], what: str) -> tuple[str, FType]:
        if len(table) != 1:
            raise _refuse(self.where, f"{self.kind} with {len(table)} {what}s")
        return next(iter(table.items()))

    def __call__(self, env: Env) -> None:
        self.step(env)

    # -- pipelines ---------------------------------------------------------
    def _pipeline(self, p: Any) -> Step:
        _only(p, {"models", "names"}, f"{self.where}.pipeline")
        if not p.models:
            raise BundleError(f"Core ML spec, {self.where}: an empty pipeline")
        subs = [_Model(sub, f"{self.where}.models[{i}]") for i, sub in enumerate(p.models)]
        # every input of a model must come from the pipeline's inputs or an earlier model's outputs
        known = dict(self.inputs)
        for sub in subs:
            for name, t in sub.inputs.items():
                if known.get(name) != t:
                    raise BundleError(f"Core ML spec, {sub.where}: input {name!r} ({t.kind}) is not produced "
                                      "before it with that type")
            known.update(sub.outputs)
        for name, t in self.outputs.items():
            if known.get(name) != t:
                raise BundleError(f"Core ML spec, {self.where}: output {name!r} is produced by no model")

        def run(env: Env) -> None:
            for sub in subs:
                sub(env)

        return run

    # -- feature engineering ----------------------------------------------
    def _vectorizer(self, fv: Any) -> Step:
        _only(fv, {"inputList"}, f"{self.where}.featureVectorizer")
        out, ot = self._one(self.outputs, "output")
        cols: list[tuple[str, FType]] = []
        for col in fv.inputList:
            t = self.inputs.get(col.inputColumn)
            if t is None or t.kind not in ("double", "array"):
                raise _refuse(self.where, f"FeatureVectorizer column {col.inputColumn!r} of type "
                                          f"{t.kind if t else 'undeclared'}")
            if col.inputDimensions != t.width:
                raise _refuse(self.where, f"inputDimensions {col.inputDimensions} for the {t.width}-value "
                                          f"column {col.inputColumn!r}")
            cols.append((col.inputColumn, t))
        if ot.kind != "array" or ot.width != sum(t.width for _, t in cols):
            raise BundleError(f"Core ML spec, {self.where}: FeatureVectorizer output {out!r} has the wrong size")

        def run(env: Env) -> None:
            parts = [_get(env, n, t, self.where) for n, t in cols]
            env[out] = np.column_stack([p.astype(np.float64) for p in parts])

        return run

    def _imputer(self, imp: Any) -> Step:
        here = f"{self.where}.imputer"
        _only(imp, {"imputedDoubleValue", "imputedStringValue", "imputedDoubleArray", "replaceDoubleValue",
                    "replaceStringValue"}, here)
        (src, it), (dst, ot) = self._one(self.inputs, "input"), self._one(self.outputs, "output")
        fill_kind, replace_kind = imp.WhichOneof("ImputedValue"), imp.WhichOneof("ReplaceValue")
        if replace_kind is None:
            raise _refuse(here, "an Imputer without ReplaceValue (which value is missing is then unstated)")
        if it != ot:
            raise BundleError(f"Core ML spec, {here}: input and output types differ")
        if it.kind == "string" and (fill_kind, replace_kind) == ("imputedStringValue", "replaceStringValue"):
            fill_s, missing_s = imp.imputedStringValue, imp.replaceStringValue

            def run_str(env: Env) -> None:
                x = _get(env, src, it, self.where)
                env[dst] = np.where(x == missing_s, fill_s, x).astype(object)

            return run_str
        if replace_kind != "replaceDoubleValue":
            raise _refuse(here, f"{replace_kind} on a {it.kind} input")
        missing = float(imp.replaceDoubleValue)
        if it.kind == "double" and fill_kind == "imputedDoubleValue":
            fill: Any = float(imp.imputedDoubleValue)
        elif it.kind == "array" and fill_kind == "imputedDoubleArray":
            fill = np.asarray(imp.imputedDoubleArray.vector, dtype=np.float64)
            if len(fill) != it.width:
                raise BundleError(f"Core ML spec, {here}: {len(fill)} imputed values for {it.width} columns")
        else:
            raise _refuse(here, f"{fill_kind} on a {it.kind} input")

        def run(env: Env) -> None:
            x = _get(env, src, it, self.where)
            hit = np.isnan(x) if np.isnan(missing) else (x == missing)
            env[dst] = np.where(hit, fill, x)

        return run

    def _scaler(self, sc: Any) -> Step:
        _only(sc, {"shiftValue", "scaleValue"}, f"{self.where}.scaler")
        (src, it), (dst, ot) = self._one(self.inputs, "input"), self._one(self.outputs, "output")
        if it.kind not in ("double", "array") or it != ot:
            raise _refuse(self.where, f"a Scaler from {it.kind} to {ot.kind}")
        n = it.width

        def vec(values: Any, default: float, what: str) -> np.ndarray:
            v = np.asarray(list(values), dtype=np.float64)
            if len(v) == 0:
                return np.full(n, default)
            if len(v) == 1:
                return np.full(n, v[0])
            if len(v) != n:
                raise BundleError(f"Core ML spec, {self.where}: {len(v)} {what} values for {n} columns")
            return v

        shift, factor = vec(sc.shiftValue, 0.0, "shift"), vec(sc.scaleValue, 1.0, "scale")

        def run(env: Env) -> None:
            x = _get(env, src, it, self.where)
            y = factor * (x.reshape(len(x), n) + shift)
            env[dst] = y[:, 0] if it.kind == "double" else y

        return run

    def _one_hot(self, enc: Any) -> Step:
        here = f"{self.where}.oneHotEncoder"
        _only(enc, {"stringCategories", "int64Categories", "outputSparse", "handleUnknown"}, here)
        if enc.outputSparse:
            raise _refuse(here, "outputSparse")
        (src, it), (dst, ot) = self._one(self.inputs, "input"), self._one(self.outputs, "output")
        which = enc.WhichOneof("CategoryType")
        if (which, it.kind) not in (("stringCategories", "string"), ("int64Categories", "int64")):
            raise _refuse(here, f"{which} with a {it.kind} input")
        cats = list(getattr(enc, which).vector)
        if len(set(cats)) != len(cats):
            raise BundleError(f"Core ML spec, {here}: a category is listed twice")
        if ot.kind != "array" or ot.width != len(cats):
            raise BundleError(f"Core ML spec, {here}: output {dst!r} is not an array of {len(cats)} values")
        error = enc.handleUnknown == proto().OneHotEncoder_pb2.OneHotEncoder.ErrorOnUnknown

        def run(env: Env) -> None:
            x = _get(env, src, it, self.where)
            out = np.column_stack([(x == c) for c in cats]).astype(np.float64) if cats else np.zeros((len(x), 0))
            if error:
                unknown = np.where(out.sum(axis=1) == 0)[0]
                if len(unknown):
                    row = int(unknown[0])
                    raise SchemaError(f"row {row}, feature {src!r}: {x[row]!r} is not one of the model's "
                                      "categories (OneHotEncoder handleUnknown = ErrorOnUnknown)", row=row)
            env[dst] = out

        return run

    def _array_extractor(self, afe: Any) -> Step:
        here = f"{self.where}.arrayFeatureExtractor"
        _only(afe, {"extractIndex"}, here)
        (src, it), (dst, ot) = self._one(self.inputs, "input"), self._one(self.outputs, "output")
        idx = [int(i) for i in afe.extractIndex]
        if it.kind != "array" or not idx or max(idx) >= it.width:
            raise BundleError(f"Core ML spec, {here}: indexes {idx} do not fit the {it.width}-value input")
        if not ((ot.kind == "double" and len(idx) == 1) or (ot.kind == "array" and ot.width == len(idx))):
            raise BundleError(f"Core ML spec, {here}: output {dst!r} does not hold {len(idx)} values")

        def run(env: Env) -> None:
            x = _get(env, src, it, self.where)
            env[dst] = x[:, idx[0]] if ot.kind == "double" else x[:, idx]

        return run

    def _svr(self, s: Any) -> Step:
        here = f"{self.where}.supportVectorRegressor"
        _only(s, {"kernel", "denseSupportVectors", "coefficients", "rho"}, here)
        sv = np.array([list(v.values) for v in s.denseSupportVectors.vectors], dtype=np.float64)
        alpha = np.asarray(list(s.coefficients.alpha), dtype=np.float64)
        if sv.ndim != 2 or len(sv) == 0 or len(alpha) != len(sv):
            raise BundleError(f"Core ML spec, {here}: {len(alpha)} coefficients for {len(sv)} support vectors")
        kernel = _kernel(s.kernel, f"{here}.kernel")
        src, it = self._linear_input(sv.shape[1])
        dst, ot = self._one(self.outputs, "output")
        if ot.kind != "double":
            raise BundleError(f"Core ML spec, {here}: output {dst!r} is not a double")
        rho = float(s.rho)

        def run(env: Env) -> None:
            x = _get(env, src, it, self.where).reshape(-1, sv.shape[1]).astype(np.float64)
            env[dst] = kernel(x, sv) @ alpha - rho

        return run

    # -- linear models ---------------------------------------------------------
    def _linear_input(self, d: int) -> tuple[str, FType]:
        src, it = self._one(self.inputs, "input")
        if it.kind not in ("double", "array") or it.width != d:
            raise BundleError(f"Core ML spec, {self.where}: {d} weights per row for the {it.width}-value input")
        return src, it

    def _glm_regressor(self, g: Any) -> Step:
        here = f"{self.where}.glmRegressor"
        _only(g, {"weights", "offset", "postEvaluationTransform"}, here)
        if g.postEvaluationTransform != proto().GLMRegressor_pb2.GLMRegressor.NoTransform:
            raise _refuse(here, f"postEvaluationTransform {g.postEvaluationTransform} (only NoTransform)")
        weights = np.array([list(w.value) for w in g.weights], dtype=np.float64)
        if weights.ndim != 2 or weights.shape[0] == 0:
            raise BundleError(f"Core ML spec, {here}: weights must be rows of equal length")
        offset = np.asarray(list(g.offset), dtype=np.float64)
        if len(offset) != weights.shape[0]:
            raise BundleError(f"Core ML spec, {here}: {len(offset)} offsets for {weights.shape[0]} weight rows")
        src, it = self._linear_input(weights.shape[1])
        dst, ot = self._one(self.outputs, "output")
        m = weights.shape[0]
        if not ((ot.kind == "double" and m == 1) or (ot.kind == "array" and ot.width == m)):
            raise BundleError(f"Core ML spec, {here}: output {dst!r} does not hold {m} values")

        def run(env: Env) -> None:
            x = _get(env, src, it, self.where).reshape(-1, weights.shape[1]).astype(np.float64)
            y = x @ weights.T + offset
            env[dst] = y[:, 0] if ot.kind == "double" else y

        return run

    def _class_outputs(self, labels: list[Any], label_kind: str) -> tuple[str, str | None]:
        if not self.predicted or self.predicted not in self.outputs:
            raise BundleError(f"Core ML spec, {self.where}: a classifier without its predictedFeatureName output")
        if self.outputs[self.predicted].kind != label_kind:
            raise BundleError(f"Core ML spec, {self.where}: label output type does not match the class labels")
        proba = self.predicted_proba or None
        if proba is not None:
            t = self.outputs.get(proba)
            if t is None or t.kind != "dict" or t.key != label_kind:
                raise BundleError(f"Core ML spec, {self.where}: probabilities output {proba!r} is not a "
                                  f"dictionary keyed by {label_kind}")
        extra = set(self.outputs) - {self.predicted, proba}
        if extra:
            raise _refuse(self.where, f"classifier outputs {sorted(extra)}")
        return self.predicted, proba

    def _labels(self, msg: Any) -> tuple[list[Any], str]:
        which = msg.WhichOneof("ClassLabels")
        if which == "stringClassLabels":
            return list(msg.stringClassLabels.vector), "string"
        if which == "int64ClassLabels":
            return [int(v) for v in msg.int64ClassLabels.vector], "int64"
        raise BundleError(f"Core ML spec, {self.where}: a classifier without class labels")

    def _classify(self, proba: np.ndarray, labels: list[Any], kind: str, label_out: str, proba_out: str | None,
                  env: Env) -> None:
        top = proba.max(axis=1, keepdims=True)
        ties = np.where((proba == top).sum(axis=1) > 1)[0]
        if len(ties):
            raise BundleError(f"Core ML spec, {self.where}: row {int(ties[0])} has two classes with the highest "
                              "probability; the Core ML format does not state which one a classifier predicts")
        idx = proba.argmax(axis=1)
        env[label_out] = np.asarray(labels, dtype=object if kind == "string" else np.int64)[idx]
        if proba_out is not None:
            env[proba_out] = ClassScores(tuple(labels), proba)

    def _glm_classifier(self, g: Any) -> Step:
        here = f"{self.where}.glmClassifier"
        _only(g, {"weights", "offset", "postEvaluationTransform", "classEncoding", "stringClassLabels",
                  "int64ClassLabels"}, here)
        glm = proto().GLMClassifier_pb2.GLMClassifier
        if g.postEvaluationTransform != glm.Logit or g.classEncoding != glm.ReferenceClass:
            raise _refuse(here, "a post-evaluation transform other than Logit or an encoding other than "
                                "ReferenceClass")
        labels, kind = self._labels(g)
        if len(labels) != 2 or len(g.weights) != 1 or len(g.offset) != 1:
            raise _refuse(here, f"{len(labels)} classes with {len(g.weights)} weight rows (only the binary "
                                "reference-class model is defined exactly)")
        w = np.asarray(list(g.weights[0].value), dtype=np.float64)
        b = float(g.offset[0])
        src, it = self._linear_input(len(w))
        label_out, proba_out = self._class_outputs(labels, kind)

        def run(env: Env) -> None:
            x = _get(env, src, it, self.where).reshape(-1, len(w)).astype(np.float64)
            with np.errstate(over="ignore"):  # e^-z overflows to inf for z < -709: p1 = 0, as it should
                p1 = 1.0 / (1.0 + np.exp(-(x @ w + b)))
            self._classify(np.column_stack([1.0 - p1, p1]), labels, kind, label_out, proba_out, env)

        return run

    # -- tree ensembles ------------------------------------------------------
    def _trees(self, params: Any, here: str) -> tuple[Callable[[np.ndarray], np.ndarray], int, str, FType]:
        _only(params, {"nodes", "numPredictionDimensions", "basePredictionValue"}, here)
        dims = int(params.numPredictionDimensions)
        base = np.asarray(list(params.basePredictionValue), dtype=np.float64)
        if dims < 1 or len(base) != dims:
            raise BundleError(f"Core ML spec, {here}: basePredictionValue has {len(base)} values for "
                              f"numPredictionDimensions {dims} (they must be equal)")
        src, it = self._one(self.inputs, "input")
        if it.kind != "array":
            raise _refuse(here, f"a tree ensemble over a {it.kind} input (only one MultiArray)")
        tree_list = _compile_trees(params.nodes, dims, it.width, here)

        def evaluate(x: np.ndarray) -> np.ndarray:
            acc = np.tile(base, (len(x), 1))
            rows = np.arange(len(x))
            for tree in tree_list:  # one tree after another, in tree-id order
                leaf = tree.leaf_of(x)
                for p in range(tree.idx.shape[1]):
                    acc[rows, tree.idx[leaf, p]] += tree.val[leaf, p]  # 0.0 where a leaf has fewer entries
            return acc

        return evaluate, dims, src, it

    def _tree_regressor(self, te: Any) -> Step:
        here = f"{self.where}.treeEnsembleRegressor"
        _only(te, {"treeEnsemble", "postEvaluationTransform"}, here)
        if te.postEvaluationTransform != proto().TreeEnsemble_pb2.NoTransform:
            raise _refuse(here, f"postEvaluationTransform {te.postEvaluationTransform} on a regressor")
        evaluate, dims, src, it = self._trees(te.treeEnsemble, here)
        dst, ot = self._one(self.outputs, "output")
        if not ((ot.kind == "double" and dims == 1) or (ot.kind == "array" and ot.width == dims)):
            raise BundleError(f"Core ML spec, {here}: output {dst!r} does not hold {dims} values")

        def run(env: Env) -> None:
            y = evaluate(_get(env, src, it, self.where))
            env[dst] = y[:, 0] if ot.kind == "double" else y

        return run

    def _tree_classifier(self, te: Any) -> Step:
        here = f"{self.where}.treeEnsembleClassifier"
        _only(te, {"treeEnsemble", "postEvaluationTransform", "stringClassLabels", "int64ClassLabels"}, here)
        evaluate, dims, src, it = self._trees(te.treeEnsemble, here)
        labels, kind = self._labels(te)
        label_out, proba_out = self._class_outputs(labels, kind)
        t = proto().TreeEnsemble_pb2
        transform = te.postEvaluationTransform
        if transform == t.Regression_Logistic:
            if dims != 1 or len(labels) != 2:
                raise _refuse(here, "Regression_Logistic other than one score for two classes")
        elif transform in (t.NoTransform, t.Classification_SoftMax):
            if dims != len(labels):
                raise BundleError(f"Core ML spec, {here}: {dims} prediction dimensions for {len(labels)} classes")
        else:
            raise _refuse(here, f"postEvaluationTransform {transform}")

        def run(env: Env) -> None:
            s = evaluate(_get(env, src, it, self.where))
            if transform == t.Regression_Logistic:
                with np.errstate(over="ignore"):
                    p1 = 1.0 / (1.0 + np.exp(-s[:, 0]))
                proba = np.column_stack([1.0 - p1, p1])
            elif transform == t.Classification_SoftMax:
                proba = _softmax(s)
            else:
                proba = s
            self._classify(proba, labels, kind, label_out, proba_out, env)

        return run

    # -- neural networks ---------------------------------------------------------
    def _neural_network(self, nn: Any) -> Step:
        here = f"{self.where}.neuralNetwork"
        _only(nn, {"layers"}, here)  # preprocessing, shape mappings other than rank 5, updates: refused
        if self.version > 3:
            raise _refuse(here, f"a rank-5 mapped network in specification version {self.version} (the format "
                                "allows that mapping up to version 3)")
        for name, t in (*self.inputs.items(), *self.outputs.items()):
            if t.kind != "array":
                raise _refuse(here, f"network feature {name!r} of type {t.kind} (only [C] MultiArrays)")
        widths = {name: t.width for name, t in self.inputs.items()}
        layers: list[Callable[[Env], None]] = []
        for i, layer in enumerate(nn.layers):
            layers.append(_compile_layer(layer, widths, f"{here}.layers[{i}] ({layer.name!r})"))
        for name, t in self.outputs.items():
            if widths.get(name) != t.width:
                raise BundleError(f"Core ML spec, {here}: output {name!r} is not a [{t.width}] blob of the network")

        def run(env: Env) -> None:
            blobs = {name: _get(env, name, t, self.where).astype(np.float64) for name, t in self.inputs.items()}
            for layer_fn in layers:
                layer_fn(blobs)
            for name in self.outputs:
                env[name] = blobs[name]

        return run


def _kernel(k: Any, where: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The kernels as SVM.proto writes them: ``x^T x'``; ``exp(-gamma ||x - x'||^2)``;
    ``(gamma x^T x' + c)^degree``; ``tanh(gamma x^T x' + c)``. Rows of x against rows of the vectors."""
    which = k.WhichOneof("kernel")
    if which == "linearKernel":
        return lambda x, v: x @ v.T
    if which == "rbfKernel":
        gamma = float(k.rbfKernel.gamma)

        def rbf(x: np.ndarray, v: np.ndarray) -> np.ndarray:
            d = x[:, None, :] - v[None, :, :]
            return np.exp(-gamma * np.einsum("nvf,nvf->nv", d, d))

        return rbf
    if which == "polyKernel":
        p = k.polyKernel
        return lambda x, v: (float(p.gamma) * (x @ v.T) + float(p.c)) ** int(p.degree)
    if which == "sigmoidKernel":
        s = k.sigmoidKernel
        return lambda x, v: np.tanh(float(s.gamma) * (x @ v.T) + float(s.c))
    raise _refuse(where, f"kernel {which!r}")


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _compile_layer(layer: Any, widths: dict[str, int], where: str) -> Callable[[Env], None]:
    _only(layer, {"name", "input", "output", "softmax", "max", "min", "loadConstant"}, where)
    kind = layer.WhichOneof("layer")
    ins, outs = list(layer.input), list(layer.output)
    if len(outs) != 1:
        raise _refuse(where, f"a layer with {len(outs)} outputs")
    for name in ins:
        if name not in widths:
            raise BundleError(f"Core ML spec, {where}: input blob {name!r} is not defined before the layer")
    out = outs[0]
    if kind == "softmax":
        if len(ins) != 1:
            raise BundleError(f"Core ML spec, {where}: a softmax layer takes one input")
        widths[out] = widths[ins[0]]

        def softmax(blobs: Env) -> None:
            blobs[out] = _softmax(blobs[ins[0]])

        return softmax
    if kind in ("max", "min"):
        if len(ins) < 2 or len({widths[n] for n in ins}) != 1:
            raise _refuse(where, f"a {kind} layer over inputs of different shapes (broadcasting)")
        widths[out] = widths[ins[0]]
        reduce = np.maximum if kind == "max" else np.minimum

        def extreme(blobs: Env) -> None:
            values = [blobs[n] for n in ins]
            if any(np.isnan(v).any() for v in values):
                raise BundleError(f"Core ML spec, {where}: NaN reaches a {kind} layer, whose result the Core ML "
                                  "format does not define")
            acc = values[0]
            for v in values[1:]:
                acc = reduce(acc, v)
            blobs[out] = acc

        return extreme
    if kind == "loadConstant":
        lc = layer.loadConstant
        _only(lc, {"shape", "data"}, where)
        _only(lc.data, {"floatValue"}, where)
        shape = list(lc.shape)
        data = np.asarray(list(lc.data.floatValue), dtype=np.float32).astype(np.float64)
        if len(ins) != 0 or len(shape) != 3 or shape[1:] != [1, 1] or len(data) != shape[0]:
            raise _refuse(where, f"a constant of shape {shape} with {len(data)} values (only [C, 1, 1])")
        widths[out] = shape[0]

        def constant(blobs: Env) -> None:
            n = len(next(iter(blobs.values()))) if blobs else 1
            blobs[out] = np.tile(data, (n, 1))

        return constant
    raise _refuse(where, f"layer type {kind!r}")


@dataclass
class _Tree:
    """One tree as arrays over its nodes, with the root at index 0."""

    feature: np.ndarray
    value: np.ndarray
    behaviour: np.ndarray
    true_child: np.ndarray
    false_child: np.ndarray
    nan_true: np.ndarray
    is_leaf: np.ndarray
    idx: np.ndarray  # (nodes, P) evaluation indexes of the leaves, padded with 0
    val: np.ndarray  # (nodes, P) evaluation values, padded with 0.0

    def leaf_of(self, x: np.ndarray) -> np.ndarray:
        """The leaf each row reaches: rows are split node by node (a node's rows go to one child or the other)."""
        pos = np.zeros(len(x), dtype=np.int64)
        if len(x) == 0:
            return pos
        leaf, feature, value = self.is_leaf.tolist(), self.feature.tolist(), self.value.tolist()
        behaviour, nan_true = self.behaviour.tolist(), self.nan_true.tolist()
        true_child, false_child = self.true_child.tolist(), self.false_child.tolist()
        stack = [(0, np.arange(len(x)))]
        visits = 0
        while stack:
            node, idx = stack.pop()
            visits += 1
            if visits > 2 * len(leaf) + 1:  # pragma: no cover - cycles are refused when the tree is compiled
                raise BundleError("Core ML spec: a tree does not end in leaves")
            if leaf[node]:
                pos[idx] = node
                continue
            v = x[idx, feature[node]]
            cond = _BRANCH[behaviour[node]](v, value[node])
            nan = np.isnan(v)
            if nan.any():  # NaN compares false everywhere; missingValueTracksTrueChild decides instead
                cond = np.where(nan, bool(nan_true[node]), cond)
            yes, no = idx[cond], idx[~cond]
            if len(yes):
                stack.append((true_child[node], yes))
            if len(no):
                stack.append((false_child[node], no))
        return pos


# BranchOnValue{LessThanEqual, LessThan, GreaterThanEqual, GreaterThan, Equal, NotEqual}: nodeBehavior 0..5
_BRANCH = (np.less_equal, np.less, np.greater_equal, np.greater, np.equal, np.not_equal)


def _compile_trees(nodes: Any, dims: int, width: int, where: str) -> list[_Tree]:
    leaf_kind = proto().TreeEnsemble_pb2.TreeEnsembleParameters.TreeNode.LeafNode
    by_tree: dict[int, dict[int, Any]] = {}
    for n in nodes:
        _only(n, {"treeId", "nodeId", "nodeBehavior", "branchFeatureIndex", "branchFeatureValue", "trueChildNodeId",
                  "falseChildNodeId", "missingValueTracksTrueChild", "evaluationInfo", "relativeHitRate"}, where)
        tree = by_tree.setdefault(int(n.treeId), {})
        if int(n.nodeId) in tree:
            raise BundleError(f"Core ML spec, {where}: tree {n.treeId} lists node {n.nodeId} twice")
        tree[int(n.nodeId)] = n
    out = []
    for tid in sorted(by_tree):
        tree = by_tree[tid]
        here = f"{where}, tree {tid}"
        children: set[int] = set()
        for nid, n in tree.items():
            if n.nodeBehavior == leaf_kind:
                if not n.evaluationInfo:
                    raise BundleError(f"Core ML spec, {here}: leaf {nid} has no evaluation value")
                for e in n.evaluationInfo:
                    if e.evaluationIndex >= dims:
                        raise BundleError(f"Core ML spec, {here}: leaf {nid} adds to dimension "
                                          f"{e.evaluationIndex} of {dims}")
                continue
            if n.nodeBehavior not in range(6):
                raise _refuse(here, f"node behaviour {n.nodeBehavior}")
            if n.evaluationInfo:
                raise _refuse(here, f"evaluation values on the branch node {nid}")
            if n.branchFeatureIndex >= width:
                raise BundleError(f"Core ML spec, {here}: node {nid} reads feature {n.branchFeatureIndex} of "
                                  f"{width}")
            for c in (n.trueChildNodeId, n.falseChildNodeId):
                if int(c) not in tree:
                    raise BundleError(f"Core ML spec, {here}: node {nid} points to the missing node {c}")
                children.add(int(c))
        roots = [nid for nid in tree if nid not in children]
        if len(roots) != 1:
            raise BundleError(f"Core ML spec, {here}: {len(roots)} root nodes (a tree must have exactly one)")
        # order nodes from the root; refuse cycles and nodes the root cannot reach
        order: list[int] = []
        seen: set[int] = set()
        stack = [roots[0]]
        while stack:
            nid = stack.pop()
            if nid in seen:
                raise BundleError(f"Core ML spec, {here}: node {nid} is reached twice (not a tree)")
            seen.add(nid)
            order.append(nid)
            n = tree[nid]
            if n.nodeBehavior != leaf_kind:
                stack += [int(n.falseChildNodeId), int(n.trueChildNodeId)]
        if len(seen) != len(tree):
            raise BundleError(f"Core ML spec, {here}: {len(tree) - len(seen)} nodes are not reachable from the root")
        pos = {nid: i for i, nid in enumerate(order)}
        ns = [tree[nid] for nid in order]
        width_p = max((len(n.evaluationInfo) for n in ns), default=1)
        idx = np.zeros((len(ns), width_p), dtype=np.int64)
        val = np.zeros((len(ns), width_p), dtype=np.float64)
        for i, n in enumerate(ns):
            for p, e in enumerate(n.evaluationInfo):
                idx[i, p], val[i, p] = int(e.evaluationIndex), float(e.evaluationValue)
        leaf = np.array([n.nodeBehavior == leaf_kind for n in ns])

        def child(n: Any, which: str, pos: dict[int, int] = pos) -> int:
            return 0 if n.nodeBehavior == leaf_kind else pos[int(getattr(n, which))]

        out.append(_Tree(
            feature=np.array([int(n.branchFeatureIndex) for n in ns], dtype=np.int64),
            value=np.array([float(n.branchFeatureValue) for n in ns], dtype=np.float64),
            behaviour=np.array([int(n.nodeBehavior) for n in ns], dtype=np.int64),
            true_child=np.array([child(n, "trueChildNodeId") for n in ns], dtype=np.int64),
            false_child=np.array([child(n, "falseChildNodeId") for n in ns], dtype=np.int64),
            nan_true=np.array([bool(n.missingValueTracksTrueChild) for n in ns]),
            is_leaf=leaf,
            idx=idx,
            val=val,
        ))
    if not out:
        raise BundleError(f"Core ML spec, {where}: a tree ensemble without trees")
    return out


class SpecEvaluator:
    """Evaluate a serialized Core ML model on a batch of named inputs.

    ``SpecEvaluator(data).run({"x": np.array([...]), ...})`` returns every
    output of the model's description, by name. The whole spec is checked when
    the evaluator is built: an unknown message or option raises ``BundleError``
    then, not halfway through a batch.
    """

    def __init__(self, data: bytes | Any) -> None:
        self.spec = parse_model(data) if isinstance(data, bytes | bytearray) else data
        self._model = _Model(self.spec, "model")
        self.inputs: dict[str, FType] = dict(self._model.inputs)
        self.outputs: dict[str, FType] = dict(self._model.outputs)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.spec.description.metadata.userDefined)

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        env: Env = {}
        n = None
        for name, t in self.inputs.items():
            if name not in feeds:
                raise SchemaError(f"field {name!r}: missing (the Core ML model takes {', '.join(self.inputs)})",
                                  field=name)
            raw = np.asarray(feeds[name])
            if t.kind == "double":
                v: Any = raw.astype(np.float64).reshape(-1)
            elif t.kind == "int64":
                v = raw.astype(np.int64).reshape(-1)
            elif t.kind == "string":
                values = raw.reshape(-1).tolist()
                bad = next((i for i, s in enumerate(values) if not isinstance(s, str)), None)
                if bad is not None:  # Core ML strings are never None/NaN: the runtime feeds a marker for missing
                    raise SchemaError(f"row {bad}, field {name!r}: expected a string, got {values[bad]!r}",
                                      row=bad, field=name)
                v = np.asarray(values, dtype=object)
            elif t.kind == "array":
                v = raw.astype(np.float64).reshape(-1, t.width)
            else:
                raise _refuse("model", f"an input of type {t.kind}")
            if n is None:
                n = len(v)
            elif len(v) != n:
                raise SchemaError(f"field {name!r}: {len(v)} values where the other inputs have {n}", field=name)
            env[name] = v
        self._model(env)
        return {name: _get(env, name, t, "model") for name, t in self.outputs.items()}
