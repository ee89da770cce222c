"""Custom steps: skedge's own OutlierClipper in the table, and a user's class registered through the public API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skedge.exporter import ExportError, build, export, register_converter
from skedge.exporter.onnx import ONNX_CONVERTERS, Var
from skedge.runtime import load
from skedge.trainer import OutlierClipper

from .datasets import numeric, targets


@pytest.mark.parametrize("method", ["quantile", "iqr"])
@pytest.mark.parametrize("where", ["before-impute", "after-impute"])
def test_outlier_clipper_exports_exactly(method: str, where: str) -> None:
    X = numeric()
    X.loc[::7, "a"] = np.nan  # NaN must pass through the clipper as np.clip lets it
    X.loc[3, "c"] = 1e9  # an outlier to clip
    _, _, y = targets(X.fillna(0))
    clip = OutlierClipper(method=method, lower=0.05, upper=0.95)
    steps: list[tuple[str, Any]] = [("clip", clip), ("impute", SimpleImputer())]
    if where == "after-impute":
        steps.reverse()
    pipe = Pipeline([*steps, ("model", RandomForestRegressor(n_estimators=10, random_state=0))]).fit(X, y)
    exported = build(pipe, X, name="clip", targets=("onnx",))
    (row,) = exported.parity
    assert row.passed, row
    assert np.isfinite(pipe.named_steps["clip"].upper_).all()


class Log1p(TransformerMixin, BaseEstimator):
    """A user's own step: log(1 + x) of non-negative features."""

    def fit(self, X: Any, y: Any = None) -> Log1p:
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.log1p(np.asarray(X, dtype=np.float64))


def convert_log1p(g: Any, step: Log1p, x: Any, ctx: Any) -> Var:
    m = g.matrix(x)
    one = g.const(np.array([[1.0]]), "one")
    return Var(g.op1("Log", [g.op1("Add", [m.name, one])]), m.dtype, m.width)


@pytest.fixture
def log1p_pipeline() -> tuple[Pipeline, pd.DataFrame]:
    X = numeric().abs()
    multi, _, _ = targets(numeric())
    pipe = Pipeline([("log", Log1p()), ("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))])
    return pipe.fit(X, multi), X


def test_unregistered_step_is_refused_with_the_way_out(log1p_pipeline: tuple[Pipeline, pd.DataFrame]) -> None:
    pipe, X = log1p_pipeline
    with pytest.raises(ExportError) as exc:
        build(pipe, X, name="log", targets=("onnx",))
    text = str(exc.value)
    assert "step 'log' (Log1p) has no ONNX converter" in text
    assert "`skedge supported --target onnx`" in text  # points to what is supported (issue 12.6), no long list
    assert "StandardScaler" not in text
    assert "register_converter(Log1p" in text


def test_registered_converter_exports_with_parity(log1p_pipeline: tuple[Pipeline, pd.DataFrame],
                                                  tmp_path: Path) -> None:
    pipe, X = log1p_pipeline
    register_converter(Log1p, onnx=convert_log1p)
    try:
        path = export(pipe, X, tmp_path, name="log1p", version="0.1.0", targets=("onnx",))
    finally:
        ONNX_CONVERTERS.pop(Log1p)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["parity"]["onnx"]["passed"]
    assert manifest["parity"]["onnx"]["label_mismatches"] == 0
    model = load(path)
    row = X.iloc[5].to_dict()
    assert model.predict(row) == pipe.predict(X.iloc[[5]])[0]
    np.testing.assert_allclose(model.predict_proba(row), pipe.predict_proba(X.iloc[[5]])[0], atol=1e-9)


def _halve(v: Any) -> Any:
    return v / 2


def test_function_transformer_is_refused_with_its_reason() -> None:
    # numpy ufuncs (np.sqrt, np.log1p, ...) are translated (exporter/onnx/transforms.py); other code is not
    X = numeric()
    multi, _, _ = targets(X)
    pipe = Pipeline([("f", FunctionTransformer(_halve)), ("scale", StandardScaler()),
                     ("model", LogisticRegression(max_iter=1000))])
    pipe.fit(X.abs(), multi)
    with pytest.raises(ExportError, match=r"step 'f' \(FunctionTransformer\) cannot be exported: it runs "
                                          r"arbitrary Python code \(func='_halve'\)"):
        build(pipe, X.abs(), name="f", targets=("onnx",))


def test_register_converter_takes_a_class() -> None:
    with pytest.raises(TypeError):
        register_converter(Log1p(), onnx=convert_log1p)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        register_converter(Log1p)
