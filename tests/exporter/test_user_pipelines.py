"""Pipelines as new users bring them: the cases a first trial of skedge got wrong, kept right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from sklearn.tree import DecisionTreeClassifier

from skedge.exporter import ExportError, build, export
from skedge.runtime import load


@pytest.fixture(scope="module")
def plans() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame({"x": rng.normal(size=n),
                      "plan": rng.choice(["free", "pro", "team", "enterprise"], n).astype(object)})
    return X, (X["x"] + (X["plan"] == "pro") > 0).astype(int)


def test_categories_come_from_the_encoder_not_only_the_sample(plans: tuple, tmp_path: Path) -> None:
    X, y = plans
    pipe = make_pipeline(ColumnTransformer([("n", "passthrough", ["x"]),
                                            ("c", OneHotEncoder(handle_unknown="error"), ["plan"])]),
                         LogisticRegression()).fit(X, y)
    small = X[X["plan"] == "free"].head(10)  # a sample that holds one category of four
    model = load(export(pipe, small, tmp_path, name="plans"))
    assert model.schema.feature("plan").categories == ("enterprise", "free", "pro", "team")
    np.testing.assert_array_equal(model.predict(X), pipe.predict(X))
    assert model.unseen_categories == {}


def test_bool_and_float_labels_keep_their_type(plans: tuple, tmp_path: Path) -> None:
    X, _ = plans
    boolean = LogisticRegression().fit(X[["x"]], X["x"] > 0.3)
    model = load(export(boolean, X[["x"]], tmp_path, name="bools"))
    assert model.predict({"x": -2.0}) is False and model.predict({"x": 2.0}) is True
    floats = LogisticRegression().fit(X[["x"]], (X["x"] > 0).astype(float))
    model = load(export(floats, X[["x"]], tmp_path, name="floats"))
    assert model.predict({"x": 1.0}) == 1.0
    assert model.verify().passed


@pytest.mark.parametrize("est", [DecisionTreeClassifier(random_state=0), HistGradientBoostingClassifier(max_iter=10)],
                         ids=["tree", "hgb"])
def test_ordinal_encoder_with_missing_as_a_category(plans: tuple, est: object) -> None:
    X, y = plans
    X = X.copy()
    X.loc[::5, "plan"] = np.nan  # OrdinalEncoder's defaults: NaN is a category, encoded as NaN
    pipe = make_pipeline(ColumnTransformer([("n", "passthrough", ["x"]), ("o", OrdinalEncoder(), ["plan"])]),
                         est).fit(X, y)
    (row,) = build(pipe, X, name="ord", targets=("onnx",)).parity
    assert row.passed and row.label_mismatches == 0, row


def test_a_zero_inflated_target_exports_to_every_target(plans: tuple) -> None:
    X, _ = plans
    rng = np.random.default_rng(1)
    y = np.where(X["x"] < 0, 0.0, rng.poisson(3, len(X)).astype(float))  # whole leaves of exact zeros
    forest = RandomForestRegressor(n_estimators=10, random_state=0).fit(X[["x"]], y)
    exported = build(forest, X[["x"]], name="zeros")
    assert {r.target for r in exported.parity} == {"onnx", "ort", "coreml"}
    assert all(r.passed for r in exported.parity)


def test_refusals_in_words(plans: tuple) -> None:
    X, y = plans
    with pytest.raises(ExportError, match="the pipeline is not fitted"):
        build(make_pipeline(LogisticRegression()), X[["x"]], name="u")
    numbered = LogisticRegression().fit(X[["x"]].to_numpy(), y)
    with pytest.raises(ExportError, match="sample column 0 is not named by a string"):
        build(numbered, pd.DataFrame(X[["x"]].to_numpy()), name="n")
    strict = make_pipeline(ColumnTransformer([("c", OneHotEncoder(handle_unknown="error"), ["plan"])]),
                           LogisticRegression()).fit(X, y)
    with pytest.raises(ExportError, match="sklearn cannot predict the sample rows"):
        build(strict, X.assign(plan=np.where(X.index % 7 == 0, np.nan, X["plan"])), name="s")


def test_columns_selected_by_a_slice_of_names(plans: tuple) -> None:
    X, y = plans
    X = X.assign(z=X["x"] * 2, w=-X["x"])
    pipe = make_pipeline(ColumnTransformer([("n", "passthrough", slice("x", "x")),
                                            ("m", "passthrough", slice("z", "w"))]),
                         LogisticRegression()).fit(X.drop(columns="plan"), y)
    (row,) = build(pipe, X.drop(columns="plan"), name="slice", targets=("onnx",)).parity
    assert row.passed


@pytest.mark.parametrize("final", ["logistic", "ridge"])
def test_a_selector_whose_estimator_is_a_regressor_is_a_transform(final: str, tmp_path: Path) -> None:
    # RFE(Ridge()) takes Ridge's estimator type: the field converter took it for the model and its {"value"}
    # output reached the next step, refused as "step 'm' (...) cannot be exported: 0"
    from sklearn.feature_selection import RFE
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(3)
    X = pd.DataFrame({f"f{i}": rng.normal(size=200) * (i + 1) for i in range(5)})
    y = X["f1"] - 0.5 * X["f3"] + rng.normal(size=200) * 0.1
    head = LogisticRegression() if final == "logistic" else Ridge()
    pipe = make_pipeline(RFE(Ridge(), n_features_to_select=2), head).fit(X, (y > 0) if final == "logistic" else y)
    model = load(export(pipe, X, tmp_path, name="rfe", targets=["onnx"]))
    test = pd.DataFrame({f"f{i}": rng.normal(size=100) * 3 for i in range(5)})
    if final == "logistic":
        np.testing.assert_array_equal(model.predict(test), pipe.predict(test))
        np.testing.assert_allclose(model.predict_proba(test), pipe.predict_proba(test), rtol=0, atol=1e-12)
    else:
        np.testing.assert_allclose(model.predict(test), pipe.predict(test), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["forest", "multioutput", "uneven"])
def test_a_multi_output_classifier_is_refused_in_words(kind: str, tmp_path: Path) -> None:
    # a 2-D y used to end in numpy's "can only convert an array of size 1 to a Python scalar" (or "inhomogeneous
    # shape" when the outputs have different class counts), not an ExportError
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.multioutput import MultiOutputClassifier

    rng = np.random.default_rng(4)
    X = pd.DataFrame({"x": rng.normal(size=120), "z": rng.normal(size=120)})
    y = np.c_[X["x"] > 0, X["z"] > 0].astype(int)
    if kind == "uneven":
        y = np.c_[y, np.digitize(X["z"], [-0.5, 0.5])]  # a third output with three classes
    est = MultiOutputClassifier(LogisticRegression()) if kind == "multioutput" else RandomForestClassifier(
        5, random_state=0)
    pipe = make_pipeline(est).fit(X, y)
    with pytest.raises(ExportError, match="multi-output classifiers are not exported"):
        export(pipe, X, tmp_path, name="multi", targets=["onnx"])
    assert list(tmp_path.iterdir()) == []
