"""export(): a user's own fitted pipeline in, a bundle out; and `skedge export` from a skops file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skedge.exporter import ExportError, export
from skedge.runtime import SchemaError, load

from .datasets import mixed, targets


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, object]:
    X = mixed()
    multi, _, _ = targets(X)
    pre = ColumnTransformer([
        ("num", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler())]), ["a", "b", "c", "d"]),
        # the most common way people impute categories; skl2onnx cannot convert it (DESIGN.md)
        ("cat", Pipeline([("imp", SimpleImputer(strategy="constant", fill_value="unknown")),
                          ("oh", OneHotEncoder(handle_unknown="ignore"))]), ["color", "size"]),
    ])
    return Pipeline([("pre", pre), ("lr", LogisticRegression(max_iter=1000))]).fit(X, multi), X


def test_export_writes_a_bundle_the_runtime_answers_like_sklearn(fitted: tuple, tmp_path: Path) -> None:
    pipe, X = fitted
    path = export(pipe, X, tmp_path, name="shop", version="2.1.0")
    assert path == tmp_path / "shop" / "2.1.0"
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["task"] == "classification" and manifest["classes"] == ["high", "low", "mid"]
    schema = {f["name"]: f for f in manifest["schema"]["features"]}
    assert schema["color"]["kind"] == "category" and schema["color"]["nullable"]
    assert schema["color"]["categories"] == ["blue", "green", "red"]
    # never missing in the sample, but the pipeline imputes it: nullable, as sklearn answers (issue 10.6)
    assert schema["b"]["nullable"] is True
    model = load(path)
    rows = X.iloc[:40]
    np.testing.assert_array_equal(model.predict(rows), pipe.predict(rows))
    np.testing.assert_allclose(model.predict_proba(rows), pipe.predict_proba(rows), atol=1e-12)
    assert model.predict({**rows.iloc[0].to_dict(), "b": None}) == pipe.predict(rows.iloc[[0]].assign(b=np.nan))[0]
    with pytest.raises(SchemaError, match=r"row 0, field 'b': expected a finite number, got inf"):
        model.predict({**rows.iloc[0].to_dict(), "b": float("inf")})
    # a category never seen in training is ignored (one-hot zeros), as sklearn does, and counted
    row = {**rows.iloc[1].to_dict(), "color": "purple"}
    assert model.predict(row) == pipe.predict(rows.iloc[[1]].assign(color="purple"))[0]
    assert model.unseen_categories == {"color": 1}


def test_sample_must_hold_the_fitted_columns(fitted: tuple, tmp_path: Path) -> None:
    pipe, X = fitted
    with pytest.raises(ExportError, match="sample lacks the column 'color'"):
        export(pipe, X.drop(columns=["color"]), tmp_path, name="x")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_bad_names_and_versions(fitted: tuple, tmp_path: Path) -> None:
    pipe, X = fitted
    with pytest.raises(ExportError, match="not a semantic version"):
        export(pipe, X, tmp_path, name="ok", version="v1")
    with pytest.raises(ExportError, match="model name"):
        export(pipe, X, tmp_path, name="../evil", version="1.0.0")


@pytest.mark.parametrize(("name", "version", "what"), [("ok", "1.0.0\n", "not a semantic version"),
                                                       ("ok\n", "1.0.0", "model name"),
                                                       ("a" * 300, "1.0.0", "up to 100")])
def test_a_final_newline_or_a_huge_name_is_refused(fitted: tuple, tmp_path: Path, name: str, version: str,
                                                   what: str) -> None:
    # '$' matched before a final newline: version "1.0.0\n" wrote the folder "1.0.0\n"; 300 letters were an OSError
    pipe, X = fitted
    with pytest.raises(ExportError, match=what):
        export(pipe, X, tmp_path, name=name, version=version)
    assert list(tmp_path.iterdir()) == []


PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def test_export_api_from_skops_path(fitted: tuple, tmp_path: Path) -> None:
    pipe, X = fitted
    sio.dump(pipe, tmp_path / "pipe.skops")
    # its only type outside skops' defaults is numpy.dtype as a DTypeNode, which skedge trusts (skops_io.py)
    assert sio.get_untrusted_types(file=tmp_path / "pipe.skops") == ["numpy.dtype"]
    path = export(tmp_path / "pipe.skops", X, tmp_path / "m", name="b")
    np.testing.assert_array_equal(load(path).predict(X.iloc[:20]), pipe.predict(X.iloc[:20]))
    with pytest.raises(ExportError, match="trusted= names types"):
        export(pipe, X, tmp_path / "m", name="c", trusted=["x.Y"])


def test_cli_export_from_skops(tmp_path: Path) -> None:
    X = mixed()
    multi, _, _ = targets(X)
    pre = ColumnTransformer([("num", SimpleImputer(), ["a", "b", "c", "d"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "size"])])
    pipe = Pipeline([("pre", pre), ("hgb", HistGradientBoostingClassifier(max_iter=15, random_state=0))]).fit(X, multi)
    sio.dump(pipe, tmp_path / "pipe.skops")
    X.to_csv(tmp_path / "sample.csv", index=False)
    cmd = [sys.executable, "-m", "skedge.cli", "export", str(tmp_path / "pipe.skops"), "--sample",
           str(tmp_path / "sample.csv"), "--name", "hgb", "--out", str(tmp_path / "models")]
    # HistGradientBoosting's tree arrays are not trusted by skops by default: the user must say so
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 1 and f"--trust {PREDICTOR}" in res.stderr, res.stderr
    assert not (tmp_path / "models" / "hgb").exists()
    res = subprocess.run([*cmd, "--trust", PREDICTOR], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    model = load(tmp_path / "models" / "hgb" / "1.0.0")
    report = model.verify()
    assert report.passed and report.label_mismatches == 0
    np.testing.assert_array_equal(model.predict(X.iloc[:30]), pipe.predict(X.iloc[:30]))
    # pickle files are never loaded
    (tmp_path / "pipe.pkl").write_bytes(b"\x80\x04N.")
    res = subprocess.run([sys.executable, "-m", "skedge.cli", "export", str(tmp_path / "pipe.pkl"), "--sample",
                          str(tmp_path / "sample.csv"), "--name", "p", "--out", str(tmp_path / "models")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "pickle files are never loaded" in res.stderr


def test_digit_string_categories_read_from_csv_keep_their_text(tmp_path: Path) -> None:
    """A pipeline fitted on store ids as text ("0101"...): the CSV sample reads them as numbers, skedge as text."""
    rng = np.random.default_rng(0)
    stores = np.array(["0101", "205", "333", "0418"])
    X = __import__("pandas").DataFrame({"store_id": rng.choice(stores, 200), "x": rng.normal(size=200)})
    y = (np.isin(X["store_id"], ["0101", "333"]) ^ (X["x"] > 1)).astype(int)
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["store_id"]), ("num", "passthrough",
                                                                                               ["x"])])
    pipe = Pipeline([("pre", pre), ("lr", LogisticRegression())]).fit(X, y)
    sio.dump(pipe, tmp_path / "pipe.skops")
    X.to_csv(tmp_path / "sample.csv", index=False)
    res = subprocess.run([sys.executable, "-m", "skedge.cli", "export", str(tmp_path / "pipe.skops"), "--sample",
                          str(tmp_path / "sample.csv"), "--name", "stores", "--out", str(tmp_path / "m")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    model = load(tmp_path / "m" / "stores" / "1.0.0")
    assert model.schema.feature("store_id").kind == "category"
    assert set(model.schema.feature("store_id").categories or ()) == set(stores)
    np.testing.assert_allclose(model.predict_proba(X.iloc[:50]), pipe.predict_proba(X.iloc[:50]), rtol=0, atol=1e-9)
    # the API with a frame whose ids became numbers (the leading zeros are gone: "101" is unseen, as in sklearn)
    numeric = X.assign(store_id=X["store_id"].astype(int))
    path = export(pipe, numeric, tmp_path / "m2", name="stores")
    assert load(path).schema.feature("store_id").kind == "category"


def test_a_curved_step_away_from_its_tree_is_named_with_the_way_out(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeRegressor

    from skedge.exporter import ParityError

    d = load_diabetes(as_frame=True)
    X, y = d.data[["bmi", "bp", "s5"]] * 100 + 50, d.target
    steps = [("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler()),
             ("tree", DecisionTreeRegressor(max_depth=6, random_state=0))]
    with pytest.raises(ParityError, match=r"Step 'log' \(FunctionTransformer\).*'scale' \(StandardScaler\) stands "
                                          r"between it and the tree.*Drop them"):
        export(Pipeline(steps).fit(X, y), X, tmp_path, name="curved", targets=["onnx"])
    # the way out the message gives: without the scaler the tree's splits fold onto log1p's input, exact
    path = export(Pipeline([steps[0], steps[2]]).fit(X, y), X, tmp_path, name="ok", targets=["onnx"])
    assert load(path).verify().passed
