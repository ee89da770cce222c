"""Nullable from what the model accepts, not from the sample (issue 10.6).

A field is nullable where the fitted pipeline answers a missing value: sklearn is asked at export. The
sample here has no missing value at all, so the old rule ("nullable where the sample had one") would call
every field not nullable and refuse None although the pipeline imputes it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skedge.exporter import export
from skedge.runtime import ExportError, SchemaError, load


def _data(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n) * 3 + 1,
                      "colour": rng.choice(["red", "green", "blue"], size=n).astype(object)})
    y = np.where(X["a"] - 0.3 * X["b"] + (X["colour"] == "red") > 0, "yes", "no")
    assert not X.isna().any().any()  # no missing value anywhere in the sample
    return X, y


@pytest.fixture(scope="module")
def imputing() -> tuple[Pipeline, pd.DataFrame]:
    """Imputes 'a' and 'colour'; 'b' goes straight to the scaler, so sklearn fails on a missing 'b'."""
    X, y = _data()
    pre = ColumnTransformer([
        ("a", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["a"]),
        ("b", StandardScaler(), ["b"]),
        ("colour", make_pipeline(SimpleImputer(strategy="constant", fill_value="none"),
                                 OneHotEncoder(handle_unknown="ignore")), ["colour"]),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(X, y), X


def _sklearn_proba(pipe: Pipeline, rows: list[dict[str, Any]]) -> np.ndarray:
    frame = pd.DataFrame({"a": [np.nan if r["a"] is None else r["a"] for r in rows],
                          "b": [r["b"] for r in rows],
                          "colour": pd.Series([np.nan if r["colour"] is None else r["colour"] for r in rows],
                                              dtype=object)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: np.ndarray = pipe.predict_proba(frame)
    return out


def test_nullable_where_the_pipeline_answers_a_missing_value(imputing: tuple[Pipeline, pd.DataFrame],
                                                              tmp_path: Path) -> None:
    pipe, X = imputing
    path = export(pipe, X, tmp_path, name="imputing", targets=("onnx",))
    model = load(path)
    assert {f.name: f.nullable for f in model.schema.features} == {"a": True, "b": False, "colour": True}
    rows: list[dict[str, Any]] = [{"a": None, "b": 0.5, "colour": "red"}, {"a": 0.1, "b": -2.0, "colour": None},
            {"a": None, "b": 4.0, "colour": None}]
    np.testing.assert_allclose(model.predict_proba(rows), _sklearn_proba(pipe, rows), rtol=0, atol=1e-12)
    with pytest.raises(SchemaError, match="'b'"):  # sklearn cannot answer a missing b: neither do we
        model.predict({"a": 0.0, "b": None, "colour": "red"})
    with pytest.raises(ValueError):  # the control: sklearn itself refuses that row
        pipe.predict(pd.DataFrame({"a": [0.0], "b": [np.nan], "colour": ["red"]}))
    card = (path / "card.md").read_text()
    assert "of the export sample (200 rows)" in card and "training range" not in card


def test_native_missing_support_is_nullable_without_an_imputer(tmp_path: Path) -> None:
    X, _ = _data()
    num = X[["a", "b"]]
    y = num["a"] * 2 + num["b"]
    pipe = make_pipeline(HistGradientBoostingRegressor(max_iter=10, random_state=0)).fit(num, y)
    model = load(export(pipe, num, tmp_path, name="hgb", targets=("onnx",)))
    assert all(f.nullable for f in model.schema.features)
    row = {"a": None, "b": 1.0}
    want = pipe.predict(pd.DataFrame({"a": [np.nan], "b": [1.0]}))[0]
    assert abs(model.predict(row) - want) <= 1e-5 * max(1.0, abs(want))


def test_user_overrides(imputing: tuple[Pipeline, pd.DataFrame], tmp_path: Path) -> None:
    pipe, X = imputing
    model = load(export(pipe, X, tmp_path, name="strict", targets=("onnx",), nullable={"a": False}))
    assert {f.name: f.nullable for f in model.schema.features} == {"a": False, "b": False, "colour": True}
    with pytest.raises(SchemaError, match="'a'"):
        model.predict({"a": None, "b": 0.0, "colour": "red"})
    # said nullable where sklearn cannot answer a missing value: refused, naming the field and sklearn's reason
    with pytest.raises(ExportError, match=r"field 'b' was declared nullable.*cannot answer a missing value"):
        export(pipe, X, tmp_path, name="loose", targets=("onnx",), nullable={"b": True})
    with pytest.raises(ExportError, match="'colour_typo'.*fields are a, b, colour"):
        export(pipe, X, tmp_path, name="typo", targets=("onnx",), nullable={"colour_typo": False})
    assert not (tmp_path / "loose").exists() and not (tmp_path / "typo").exists()


def test_cli_nullable_and_not_nullable(imputing: tuple[Pipeline, pd.DataFrame], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    skops_io = pytest.importorskip("skops.io")
    from skedge.cli import main

    pipe, X = imputing
    skops_file = tmp_path / "pipe.skops"
    skops_io.dump(pipe, skops_file)
    sample = tmp_path / "sample.csv"
    X.to_csv(sample, index=False)
    out = tmp_path / "models"
    assert main(["export", str(skops_file), "--sample", str(sample), "--name", "cli", "--out", str(out),
                 "--not-nullable", "colour"]) == 0, capsys.readouterr().err
    assert "bundle id: sha256(manifest.json)" in capsys.readouterr().out
    model = load(out / "cli" / "1.0.0")
    assert {f.name: f.nullable for f in model.schema.features} == {"a": True, "b": False, "colour": False}
    assert main(["export", str(skops_file), "--sample", str(sample), "--name", "cli2", "--out", str(out),
                 "--nullable", "b"]) == 1
    assert "field 'b' was declared nullable" in capsys.readouterr().err
    assert main(["export", str(skops_file), "--sample", str(sample), "--name", "cli3", "--out", str(out),
                 "--nullable", "a", "--not-nullable", "a"]) == 1
    assert "both --nullable and --not-nullable" in capsys.readouterr().err


def test_trained_bundle_card_says_training_data(penguins_bundle: Path) -> None:
    card = (penguins_bundle / "card.md").read_text()
    assert "of the training data" in card and "export sample" not in card
