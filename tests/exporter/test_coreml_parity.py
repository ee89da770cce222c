"""Core ML parity: every convertible estimator, classification and regression, on two datasets.

Each case fits a real pipeline, exports it with ``build(..., targets=("onnx", "coreml"))``
and checks the ``coreml`` ParityRow: the reference evaluator runs the spec skedge
wrote on the golden rows (holdout, edges incl. all-missing and unseen categories,
rows exactly on every tree threshold and one float32/float64 step either side,
probability ties) against sklearn's own answers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import HuberRegressor, Lasso, LinearRegression, LogisticRegression, Ridge, SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skedge.exporter import build
from skedge.trainer.features import OutlierClipper

NUMERIC = ["a", "b", "c"]
CATEGORIES = ["color", "size"]

# name -> (factory, linear?): small ensembles keep the suite fast; even tree counts make probability ties
CLASSIFIERS: dict[str, tuple[Any, bool]] = {
    "logistic_regression": (lambda: LogisticRegression(max_iter=1000), True),
    "decision_tree": (lambda: DecisionTreeClassifier(random_state=0), False),
    "random_forest": (lambda: RandomForestClassifier(n_estimators=10, random_state=0), False),
    "extra_trees": (lambda: ExtraTreesClassifier(n_estimators=10, random_state=0), False),
    "gradient_boosting": (lambda: GradientBoostingClassifier(n_estimators=20, random_state=0), False),
    "hist_gradient_boosting": (lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0), False),
    # issue 12 point 4: more of the families the Core ML format can express exactly
    "lda": (LinearDiscriminantAnalysis, True),
    "pca_whiten_logistic": (lambda: Pipeline([("pca", PCA(3, whiten=True)),
                                              ("lr", LogisticRegression(max_iter=1000))]), True),
    "selectkbest_logistic": (lambda: Pipeline([("k", SelectKBest(f_classif, k=3)),
                                               ("lr", LogisticRegression(max_iter=1000))]), True),
}
REGRESSORS: dict[str, tuple[Any, bool]] = {
    "linear_regression": (LinearRegression, True),
    "ridge": (Ridge, True),
    "lasso": (lambda: Lasso(alpha=0.1), True),
    "decision_tree": (lambda: DecisionTreeRegressor(max_depth=8, random_state=0), False),
    "random_forest": (lambda: RandomForestRegressor(n_estimators=10, random_state=0), False),
    "extra_trees": (lambda: ExtraTreesRegressor(n_estimators=10, random_state=0), False),
    "gradient_boosting": (lambda: GradientBoostingRegressor(n_estimators=20, random_state=0), False),
    "hist_gradient_boosting": (lambda: HistGradientBoostingRegressor(max_iter=20, random_state=0), False),
    "svr_rbf": (lambda: SVR(C=100.0), True),
    "svr_poly": (lambda: SVR(kernel="poly", degree=2, C=10.0), True),
    "sgd": (lambda: SGDRegressor(max_iter=5000, tol=None, random_state=0), True),
    "huber": (lambda: HuberRegressor(max_iter=500), True),
    "truncated_svd_ridge": (lambda: Pipeline([("svd", TruncatedSVD(2, random_state=0)), ("ridge", Ridge())]), True),
}
CASES = [(t, e, d) for t, table in (("classification", CLASSIFIERS), ("regression", REGRESSORS))
         for e in table for d in ("numeric", "mixed")]


def make_data(dataset: str, task: str, n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers with 10 % missing in ``a``; the mixed set adds two category columns with missing values."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(10, 3, n).round(2), "b": rng.exponential(2.0, n),
                       "c": rng.integers(0, 50, n).astype(float)})
    df.loc[rng.random(n) < 0.1, "a"] = np.nan
    z = df["a"].fillna(10) / 3 + df["b"] - df["c"] / 25
    if dataset == "mixed":
        df["color"] = pd.Series(rng.choice(["red", "green", "blue"], n), dtype=object)
        df["size"] = pd.Series(rng.choice(["S", "M", "L", "XL"], n), dtype=object)
        df.loc[rng.random(n) < 0.1, "color"] = np.nan
        df.loc[rng.random(n) < 0.05, "size"] = np.nan
        z = z + (df["color"] == "red") * 1.5 - (df["size"] == "S") * 1.0
    if task == "regression":
        return df, np.asarray(z * 100 + rng.normal(0, 5, n))
    if dataset == "mixed":  # three string classes
        return df, np.where(z < 3, "low", np.where(z < 5, "mid", "high"))
    return df, np.asarray((z + rng.normal(0, 0.5, n) > 4).astype(int))  # two int classes


def make_pipeline(dataset: str, estimator: Any, linear: bool) -> Pipeline:
    """The trainer's shape of pipeline: imputation, skedge's clipper, scaling for linear models only, one-hot."""
    numeric: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if dataset == "mixed":
        numeric.append(("clip", OutlierClipper()))  # in front of trees too: its float32 bounds must not matter
    if linear:
        numeric.append(("scale", StandardScaler() if dataset == "mixed" else MinMaxScaler()))
    parts: list[tuple[str, Any, list[str]]] = [("num", Pipeline(numeric), NUMERIC)]
    if dataset == "mixed":
        # missing as its own category, and most-frequent imputation of a category column
        parts.append(("color", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["color"]))
        parts.append(("size", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]),
                      ["size"]))
    return Pipeline([("features", ColumnTransformer(parts, sparse_threshold=0.0)), ("model", estimator)])


@pytest.mark.parametrize(("task", "estimator", "dataset"), CASES,
                         ids=[f"{t[:5]}-{e}-{d}" for t, e, d in CASES])
def test_coreml_answers_like_sklearn(task: str, estimator: str, dataset: str) -> None:
    factory, linear = (CLASSIFIERS if task == "classification" else REGRESSORS)[estimator]
    df, y = make_data(dataset, task)
    pipe = make_pipeline(dataset, factory(), linear).fit(df, y)
    sample = df.copy()
    if dataset == "mixed":  # categories sklearn never saw in training, in the holdout rows too
        sample.loc[sample.index[:3], "color"] = "purple"

    exported = build(pipe, sample, name=f"parity-{estimator}", targets=("onnx", "coreml"))

    assert "coreml" not in exported.manifest["unavailable_targets"], exported.manifest["unavailable_targets"]
    assert "model.mlmodel" in exported.files
    row = {r.target: r for r in exported.parity}["coreml"]
    golden_kinds = Counter(k.split(":")[0] for k in _kinds(exported))
    assert row.rows > 200
    assert row.label_mismatches == 0 and row.passed, row
    if task == "classification":
        assert row.label_agreement == 1.0
    # values within 1e-5, relative above 1 (the golden tolerance); trees sum exactly as sklearn does
    assert row.max_rel_diff <= 1e-5
    if not linear:
        assert row.max_rel_diff <= 1e-12, row
        assert golden_kinds["threshold"] > 50  # the adversarial rows were there
    assert golden_kinds["edge"] > 0
    if dataset == "mixed":
        assert any(k.startswith("edge:unseen-category") for k in _kinds(exported))


def _kinds(exported: Any) -> list[str]:
    import json

    return json.loads(exported.files["golden.json"])["kinds"]


def test_forest_ties_break_like_sklearn() -> None:
    """An even number of trees gives exact 0.5/0.5 rows; sklearn then predicts the first class, and so must Core ML."""
    df, y = make_data("numeric", "classification")
    pipe = make_pipeline("numeric", RandomForestClassifier(n_estimators=4, random_state=1), False)
    pipe.fit(df, y)
    exported = build(pipe, df, name="ties", targets=("onnx", "coreml"))
    kinds = _kinds(exported)
    assert kinds.count("tie") > 0
    row = {r.target: r for r in exported.parity}["coreml"]
    assert row.passed and row.label_mismatches == 0


@pytest.mark.parametrize("estimator", [
    DecisionTreeClassifier(random_state=0), RandomForestClassifier(n_estimators=6, random_state=0),
    ExtraTreesClassifier(n_estimators=6, random_state=0), HistGradientBoostingClassifier(max_iter=10),
    DecisionTreeRegressor(random_state=0), HistGradientBoostingRegressor(max_iter=10),
], ids=lambda e: type(e).__name__)
def test_trees_route_missing_values_like_sklearn(estimator: Any) -> None:
    """No imputer: NaN reaches the trees, which route it by missing_go_to_left (a split on "missing or not"
    has the threshold +inf)."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (df["a"] + df["b"] > 0).astype(int) if hasattr(estimator, "predict_proba") else df["b"] * 2
    df.loc[rng.random(300) < 0.15, "a"] = np.nan
    exported = build(estimator.fit(df, y), df, name="nan", targets=("onnx", "coreml"))
    row = {r.target: r for r in exported.parity}["coreml"]
    assert row.passed and row.label_mismatches == 0 and row.max_rel_diff <= 1e-12, row
    assert "edge:missing:a" in _kinds(exported)
