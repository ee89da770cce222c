"""Core ML as part of every bundle: the penguins bundle, pipelines that cannot be converted, the model's interface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest, RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder

import skedge.exporter.coreml as coreml
from skedge.exporter import build, export, load_coreml, register_converter
from skedge.exporter.coreml import CoreMLUnsupported, to_coreml
from skedge.exporter.coreml._builder import Builder, Var, describe
from skedge.exporter.coreml._proto import quiet_import
from skedge.exporter.coreml.heads import argmax_label
from skedge.exporter.coreml.trees import float32_split
from skedge.exporter.verify import verify_bundle
from skedge.runtime import load
from skedge.runtime._errors import ExportError
from skedge.trainer.features import OutlierClipper

PENGUIN = {"island": "Biscoe", "bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181.0,
           "body_mass_g": 3750.0, "sex": "male", "year": 2007}


# -- the penguins bundle -------------------------------------------------------------------
def test_penguins_bundle_has_a_core_ml_model_that_passes_verify(penguins_bundle: Path) -> None:
    path = penguins_bundle / "model.mlmodel"
    assert path.exists()
    spec = quiet_import("coremltools").utils.load_spec(str(path))
    desc = spec.description
    kinds = {i.name: i.type.WhichOneof("Type") for i in desc.input}
    assert kinds["island"] == "stringType" and kinds["sex"] == "stringType"
    assert kinds["bill_length_mm"] == "doubleType" and kinds["year"] == "doubleType"
    assert [(o.name, o.type.WhichOneof("Type")) for o in desc.output] == [("label", "stringType"),
                                                                         ("probabilities", "multiArrayType")]
    manifest = json.loads((penguins_bundle / "manifest.json").read_text())
    assert json.loads(desc.metadata.userDefined["skedge.schema"]) == manifest["schema"]
    assert "coreml" not in manifest["unavailable_targets"]
    assert manifest["parity"]["coreml"]["passed"]

    rows = {r.target: r for r in verify_bundle(penguins_bundle)}
    assert rows["coreml"].passed and rows["coreml"].label_mismatches == 0, rows["coreml"]
    assert rows["coreml"].rows == rows["onnx"].rows > 500


def test_load_coreml_predicts_like_the_runtime(penguins_bundle: Path) -> None:
    ml = load_coreml(penguins_bundle / "model.mlmodel")
    onnx = load(penguins_bundle)
    assert ml.classes == onnx.classes == ("Adelie", "Chinstrap", "Gentoo")
    assert ml.predict(PENGUIN) == onnx.predict(PENGUIN)
    rows = [PENGUIN, {**PENGUIN, "island": None, "bill_length_mm": None}, {**PENGUIN, "island": "Atlantis"}]
    np.testing.assert_array_equal(ml.predict(rows), onnx.predict(rows))
    np.testing.assert_allclose(ml.predict_proba(rows), onnx.predict_proba(rows), atol=1e-12)
    assert ml.predict_proba(PENGUIN).shape == (3,)
    assert set(ml.predict_outputs(rows)) == {"label", "probabilities"}


@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML itself runs on macOS only")
def test_core_ml_itself_agrees_with_the_evaluator(penguins_bundle: Path) -> None:
    golden = json.loads((penguins_bundle / "golden.json").read_text())
    native = load_coreml(penguins_bundle, backend="coreml")
    reference = load_coreml(penguins_bundle, backend="evaluator")
    got, ref = native.predict_outputs(golden["rows"]), reference.predict_outputs(golden["rows"])
    assert got["label"].tolist() == ref["label"].tolist()
    np.testing.assert_allclose(got["probabilities"], ref["probabilities"], atol=1e-5)


def test_importing_coremltools_prints_nothing(penguins_bundle: Path) -> None:
    code = ("from skedge.exporter import load_coreml; "
            f"print(load_coreml({str(penguins_bundle)!r}).predict({PENGUIN!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() in ("Adelie", "Chinstrap", "Gentoo")
    assert done.stderr == ""


# -- pipelines Core ML cannot take -----------------------------------------------------------
def _frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                       "k": pd.Series(rng.choice(["p", "q", "r"], n), dtype=object)})
    return df, np.where(df["x"] + (df["k"] == "p") > 0, "yes", "no")


def _numeric(est: Any, extra: list[tuple[str, Any]] | None = None) -> Pipeline:
    ct = ColumnTransformer([("num", SimpleImputer(), ["x", "z"]),
                            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["k"])])
    return Pipeline([("features", ct), *(extra or []), ("model", est)])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_unconvertible_pipeline_still_writes_the_bundle(tmp_path: Path) -> None:
    df, y = _frame()
    pipe = _numeric(MLPClassifier(hidden_layer_sizes=(4,), max_iter=300, random_state=0)).fit(df, y)
    out = export(pipe, df, tmp_path, name="mlp", version="1.0.0")
    manifest = json.loads((out / "manifest.json").read_text())
    reason = manifest["unavailable_targets"]["coreml"]
    assert "step 'model' (MLPClassifier)" in reason and "float32" in reason
    assert not (out / "model.mlmodel").exists() and (out / "model.onnx").exists()
    assert set(manifest["parity"]) == {"onnx", "ort"}
    assert f"coreml: not exported — {reason}" in (out / "card.md").read_text()
    rows = verify_bundle(out)
    assert [r.target for r in rows] == ["onnx", "ort"] and all(r.passed for r in rows)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda: Pipeline([("features", ColumnTransformer([("num", SimpleImputer(), ["x", "z"]),
                                                       ("ord", OrdinalEncoder(), ["k"])])),
                       ("model", RandomForestClassifier(n_estimators=4, random_state=0))]),
     "step 'ord' (OrdinalEncoder) has no Core ML converter. Supported:"),
    (lambda: Pipeline([("features", ColumnTransformer([("num", OutlierClipper(), ["x", "z"])])),
                       ("model", RandomForestClassifier(n_estimators=4, random_state=0))]),
     "step 'num' (OutlierClipper) cannot be exported to Core ML: clipping columns that may be missing"),
    (lambda: Pipeline([("features", ColumnTransformer([
        ("num", SimpleImputer(), ["x", "z"]), ("cat", OneHotEncoder(drop="first", sparse_output=False), ["k"])])),
        ("model", LogisticRegression())]),
     "OneHotEncoder(drop=...) is not supported"),
])
def test_unsupported_steps_are_named_with_the_reason(make: Any, expected: str) -> None:
    df, y = _frame()
    df.loc[df.index[:5], "x"] = np.nan  # missing numbers: the clipper case needs them
    pipe = make().fit(df, y)
    exported = build(pipe, df, name="nope")  # default targets: Core ML is optional, left out with its reason
    assert expected in exported.manifest["unavailable_targets"]["coreml"]
    assert "model.mlmodel" not in exported.files and "model.onnx" in exported.files
    with pytest.raises(ExportError, match="the coreml target was asked for"):  # named: all or nothing
        build(pipe, df, name="nope", targets=("onnx", "coreml"))
    with pytest.raises(CoreMLUnsupported, match="step '"):
        to_coreml(pipe, _schema_of(exported), name="nope", version="1.0.0")


def _classification_schema(df: pd.DataFrame, classes: Any) -> Any:
    from skedge.exporter._schema import infer_features
    from skedge.runtime._schema import Schema

    return Schema(features=infer_features(df), task="classification", classes=tuple(classes),
                  outputs={"label": "label", "probabilities": "probabilities"})


def test_function_transformer_the_identity_passes_any_other_is_refused() -> None:
    """A fitted ColumnTransformer holds "passthrough" as FunctionTransformer(func=None): that one converts."""
    df, y = _frame()
    ct = ColumnTransformer([("num", "passthrough", ["x", "z"]),
                            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["k"])])
    pipe = Pipeline([("features", ct), ("model", RandomForestClassifier(n_estimators=4, random_state=0))]).fit(df, y)
    schema = _classification_schema(df, pipe.classes_)
    model = coreml.evaluator_for(to_coreml(pipe, schema, name="pass", version="1.0.0"), schema)
    rows = df.to_dict("records")
    assert model.predict(rows).tolist() == pipe.predict(df).tolist()
    np.testing.assert_array_equal(model.predict_proba(rows), pipe.predict_proba(df))

    tanh = Pipeline([("features", ct), ("squash", FunctionTransformer(np.tanh)),
                     ("model", RandomForestClassifier(n_estimators=4, random_state=0))]).fit(df, y)
    with pytest.raises(CoreMLUnsupported, match="step 'squash' .FunctionTransformer. cannot be exported to Core ML: "
                                                "it runs arbitrary Python code"):
        to_coreml(tanh, schema, name="tanh", version="1.0.0")


def test_anomaly_models_are_not_exported_to_core_ml() -> None:
    df, _ = _frame()
    pipe = Pipeline([("features", ColumnTransformer([("num", SimpleImputer(), ["x", "z"])])),
                     ("model", IsolationForest(n_estimators=10, random_state=0))]).fit(df)
    exported = build(pipe, df[["x", "z", "k"]], name="iso")
    reason = exported.manifest["unavailable_targets"]["coreml"]
    assert reason.startswith("step 'model' (IsolationForest) cannot be exported to Core ML: anomaly detection")


def _schema_of(exported: Any) -> Any:
    from skedge.runtime._schema import Schema

    return Schema.from_json(exported.manifest["schema"])


# -- the converter's own promises ------------------------------------------------------------------
def test_same_pipeline_same_bytes_and_the_schema_travels_in_the_metadata() -> None:
    df, y = _frame()
    pipe = _numeric(RandomForestClassifier(n_estimators=6, random_state=0)).fit(df, y)
    exported = build(pipe, df, name="same", targets=("onnx", "coreml"))
    schema = _schema_of(exported)
    again = to_coreml(pipe, schema, name="same", version="1.0.0")
    assert again == exported.files["model.mlmodel"]
    ml = coreml.CoreMLModel(again)
    assert ml.schema == schema and ml.classes == ("no", "yes")


def test_int_labels_and_regression_output_types() -> None:
    df, y = _frame()
    clf = _numeric(RandomForestClassifier(n_estimators=4, random_state=0)).fit(df, (y == "yes").astype(int))
    exported = build(clf, df, name="ints", targets=("onnx", "coreml"))
    spec = coreml.SpecEvaluator(exported.files["model.mlmodel"]).spec
    assert spec.description.output[0].type.WhichOneof("Type") == "int64Type"
    assert {r.target: r for r in exported.parity}["coreml"].passed
    reg = _numeric(RandomForestRegressor(n_estimators=4, random_state=0)).fit(df, df["z"] * 3)
    exported = build(reg, df, name="reg", targets=("onnx", "coreml"))
    spec = coreml.SpecEvaluator(exported.files["model.mlmodel"]).spec
    assert [(o.name, o.type.WhichOneof("Type")) for o in spec.description.output] == [("variable", "doubleType")]
    assert {r.target: r for r in exported.parity}["coreml"].passed


def test_float32_split_is_sklearns_float32_comparison() -> None:
    """x <= T exactly when float32(x) <= t, checked on the doubles where it could go wrong."""
    rng = np.random.default_rng(0)
    f32 = rng.normal(scale=100.0, size=300).astype(np.float32)
    nxt = np.nextafter(f32, np.float32(np.inf))
    midpoints = (f32.astype(np.float64) + nxt.astype(np.float64)) / 2  # where float32 rounding turns
    thresholds = np.concatenate([rng.normal(scale=100.0, size=300), f32.astype(np.float64), midpoints,
                                 [0.0, -0.0, 1e-300, -1e-300, 1.5, -2.5, 3.4e38, -3.4e38, 3.5e38, -3.5e38,
                                  1e300, -1e300, np.inf, -np.inf]])
    checked = 0
    with np.errstate(over="ignore"):  # doubles beyond the float32 range round to inf, as sklearn's cast does
        for t in thresholds:
            big = float(float32_split(t))
            xs = {t, big, float(np.float32(t)), float(np.nextafter(big, np.inf)), float(np.nextafter(big, -np.inf)),
                  np.inf, -np.inf}
            for x in list(xs):
                xs |= {float(np.nextafter(x, np.inf)), float(np.nextafter(x, -np.inf))}
            for x in xs:
                assert (x <= big) == (float(np.float32(x)) <= t), (t, x, big)
                checked += 1
    assert checked > 5000


def test_label_tree_breaks_ties_like_numpy_argmax() -> None:
    """skedge's label tree over pairwise differences picks the first maximum, on integer scores full of ties."""
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        classes = [f"c{i}" for i in range(k)]
        b = Builder(reserved=["s", "label"])
        argmax_label(b, Var("s", "array", k), classes, "label")
        top = quiet_import("coremltools.proto.Model_pb2").Model()
        top.specificationVersion = 3
        describe(top.description.input.add(), Var("s", "array", k))
        describe(top.description.output.add(), Var("label", "string"))
        top.pipeline.models.extend(b.models)
        scores = rng.integers(0, 3, size=(400, k)).astype(np.float64)
        got = coreml.SpecEvaluator(top.SerializeToString()).run({"s": scores})["label"]
        assert got.tolist() == [classes[i] for i in scores.argmax(axis=1)]


def test_register_converter_puts_a_class_in_the_core_ml_table() -> None:
    from sklearn.base import BaseEstimator, TransformerMixin

    from skedge.exporter.coreml._table import COREML_CONVERTERS
    from skedge.exporter.onnx import ONNX_CONVERTERS

    class Double(TransformerMixin, BaseEstimator):
        def fit(self, X: Any, y: Any = None) -> Double:
            self.n_features_in_ = np.asarray(X).shape[1]
            return self

        def transform(self, X: Any) -> np.ndarray:
            return np.asarray(X, dtype=np.float64) * 2.0

    def onnx_double(g: Any, step: Any, x: Any, ctx: Any) -> Any:
        from skedge.exporter.onnx._builder import DOUBLE
        from skedge.exporter.onnx._builder import Var as OVar

        m = g.matrix(x, "dbl_in")
        return OVar(g.op1("Mul", [m.name, g.const(np.array([[2.0]]), "two")], "doubled"), DOUBLE, m.width)

    def coreml_double(b: Any, step: Any, x: Any, ctx: Any) -> Any:
        xa = b.vectorize(x)
        out = b.var("doubled", "array", xa.width)
        m = b.model([xa], [out], "double")
        m.scaler.scaleValue.append(2.0)
        return out

    register_converter(Double, onnx=onnx_double, coreml=coreml_double)
    try:
        df, y = _frame()
        pipe = _numeric(LogisticRegression(), [("double", Double())]).fit(df, y)
        exported = build(pipe, df, name="custom", targets=("onnx", "coreml"))
        assert {r.target: r for r in exported.parity}["coreml"].passed
    finally:
        COREML_CONVERTERS.pop(Double, None)
        ONNX_CONVERTERS.pop(Double, None)


def test_public_names() -> None:
    assert sorted(coreml.__all__) == sorted([
        "COREML_CONVERTERS", "COREML_FORMAT", "META_SCHEMA", "CoreMLModel", "CoreMLUnsupported", "SpecEvaluator",
        "evaluator_for", "load_coreml", "to_coreml"])
    assert "LogisticRegression" in [k.__name__ for k in coreml.COREML_CONVERTERS if isinstance(k, type)]
    assert "skedge.trainer.features.OutlierClipper" in coreml.COREML_CONVERTERS


def test_imputer_before_clipper_makes_the_clipper_convertible() -> None:
    df, y = _frame()
    df.loc[df.index[:5], "x"] = np.nan
    pipe = Pipeline([("features", ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer()), ("clip", OutlierClipper(lower=0.1, upper=0.9))]),
         ["x", "z"])])), ("model", RandomForestClassifier(n_estimators=4, random_state=0))]).fit(df, y)
    exported = build(pipe, df, name="clip", targets=("onnx", "coreml"))
    row = {r.target: r for r in exported.parity}["coreml"]
    assert row.passed and row.max_abs_diff == 0.0
