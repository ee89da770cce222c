"""The parity matrix: every supported estimator × task × dataset, exported and checked against sklearn.

Each case fits a real pipeline, exports it with ``build`` (ONNX and ORT), and
checks the ParityRow the exporter computed by running the golden rows —
holdout, edges, rows on tree thresholds and one float32/float64 step either
side, probability ties — through onnxruntime against sklearn's own answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skedge.exporter import build

from .datasets import mixed, numeric, targets

# small networks stop before converging; that is their business, not the exporter's
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
SEED = 0
CLASSIFIERS = {
    "logistic": lambda: LogisticRegression(max_iter=500),
    "decision_tree": lambda: DecisionTreeClassifier(max_depth=6, random_state=SEED),
    "random_forest": lambda: RandomForestClassifier(n_estimators=20, max_depth=8, random_state=SEED),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=20, max_depth=8, random_state=SEED),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=20, random_state=SEED),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=20, random_state=SEED),
    "knn": lambda: KNeighborsClassifier(n_neighbors=5),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=SEED),
}
REGRESSORS = {
    "linear": LinearRegression,
    "ridge": Ridge,
    "lasso": lambda: Lasso(alpha=0.1),
    "decision_tree": lambda: DecisionTreeRegressor(max_depth=6, random_state=SEED),
    "random_forest": lambda: RandomForestRegressor(n_estimators=20, max_depth=8, random_state=SEED),
    "extra_trees": lambda: ExtraTreesRegressor(n_estimators=20, max_depth=8, random_state=SEED),
    "gradient_boosting": lambda: GradientBoostingRegressor(n_estimators=20, random_state=SEED),
    "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(max_iter=20, random_state=SEED),
    "knn": lambda: KNeighborsRegressor(n_neighbors=5),
    "mlp": lambda: MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=SEED),
}
TREES = {"decision_tree", "random_forest", "extra_trees", "gradient_boosting", "hist_gradient_boosting"}
NUMERIC_COLS = ["a", "b", "c", "d"]


def _preprocessor(dataset: str, scale: bool, variant: int) -> ColumnTransformer:
    """Preprocessing as people write it; scalers vary so that each one meets the estimators."""
    scaler: list[tuple[str, Any]] = []
    if scale:
        scaler = [("scale", [StandardScaler(), MinMaxScaler(), RobustScaler()][variant % 3])]
    num = Pipeline([("impute", SimpleImputer(strategy="median")), *scaler])
    # "passthrough" too: a fitted ColumnTransformer stores it as FunctionTransformer(func=None)
    parts: list[tuple[str, Any, list[str]]] = [("num", num, NUMERIC_COLS), ("raw", "passthrough", ["d"])]
    if dataset == "mixed":
        parts.append(("color", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="none")),
                                         ("onehot", OneHotEncoder(handle_unknown="ignore"))]), ["color"]))
        ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
        parts.append(("size", ordinal, ["size"]))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def _frame(dataset: str) -> pd.DataFrame:
    return numeric() if dataset == "numeric" else mixed()


def _check(exported: Any) -> None:
    rows = {r.target: r for r in exported.parity}
    assert set(rows) >= {"onnx", "ort"}
    for r in rows.values():
        assert r.rows > 50
        assert r.label_mismatches == 0, r
        assert r.passed, r


@pytest.mark.parametrize("dataset", ["numeric", "mixed"])
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
@pytest.mark.parametrize("kind", ["multiclass", "binary"])
def test_classifier_parity(name: str, dataset: str, kind: str) -> None:
    X = _frame(dataset)
    multi, binary, _ = targets(X)
    y = multi if kind == "multiclass" else binary
    scale = name not in TREES
    pipe = Pipeline([("pre", _preprocessor(dataset, scale, len(name))), ("model", CLASSIFIERS[name]())])
    pipe.fit(X, y)
    exported = build(pipe, X.iloc[:150], name="matrix", targets=("onnx", "ort"))
    _check(exported)
    golden = exported.files["golden.json"]
    assert b"threshold:" in golden or name not in TREES  # trees get adversarial rows
    assert b"edge:unseen-category" in golden or dataset == "numeric"


@pytest.mark.parametrize("dataset", ["numeric", "mixed"])
@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_regressor_parity(name: str, dataset: str) -> None:
    X = _frame(dataset)
    _, _, y = targets(X)
    scale = name not in TREES
    pipe = Pipeline([("pre", _preprocessor(dataset, scale, len(name))), ("model", REGRESSORS[name]())])
    pipe.fit(X, y)
    _check(build(pipe, X.iloc[:150], name="matrix", targets=("onnx", "ort")))


@pytest.mark.parametrize("dataset", ["numeric", "mixed"])
@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_isolation_forest_parity(dataset: str, max_features: float) -> None:
    X = _frame(dataset)
    pipe = Pipeline([("pre", _preprocessor(dataset, False, 0)),
                     ("model", IsolationForest(n_estimators=30, max_features=max_features, random_state=SEED))])
    pipe.fit(X)
    _check(build(pipe, X.iloc[:150], name="matrix", targets=("onnx", "ort")))


def test_scaler_in_front_of_an_even_forest_keeps_every_label() -> None:
    """DESIGN.md's measured trap: float64 StandardScaler + 100-tree forest flipped 24 of 2,000 labels."""
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(2000, 6)) * [1, 10, 100, 1e3, 1e-2, 5], columns=list("uvwxyz"))
    y = (X["u"] + X["v"] / 10 + rng.normal(0, 0.3, 2000) > 0).astype(int)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("model", RandomForestClassifier(n_estimators=100, random_state=0))]).fit(X, y)
    exported = build(pipe, X, name="trap", targets=("onnx",))
    (row,) = exported.parity
    assert row.rows >= 2000 // 10
    assert row.label_mismatches == 0
    assert row.max_abs_diff <= 1e-6
    golden_kinds = __import__("json").loads(exported.files["golden.json"])["kinds"]
    assert any(k.startswith("threshold:") for k in golden_kinds)
    assert "tie" in golden_kinds  # an even forest has exact 0.5 ties; they are in the golden set
