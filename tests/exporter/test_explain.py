"""explain.onnx against a Python reference computed from the sklearn model, for every explained family.

The reference is written here, apart from the exporter: one-hot groups from the ColumnTransformer's own
``output_indices_`` (not the converter's column origins), Saabas by sklearn's ``decision_path`` over the fitted
``tree_`` arrays (forests, single trees and squared-error boosting take sklearn's node values as they are;
log-loss boosting and HistGradientBoosting, whose inner values do not add up to their leaves, a weighted mean of
the leaves), linear models as coefficients × centred inputs. The margin models' mapping onto probabilities
is the documented secant rule, applied here in numpy to the reference's margin contributions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import ensemble, linear_model, neighbors, tree
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skedge.exporter._schema import infer_features, rows_to_json
from skedge.exporter.explain import build_explanations, importances
from skedge.runtime._schema import Schema
from skedge.runtime.explain import Explainer

from ..conftest import EXAMPLES

NUM = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
CAT = ["island", "sex"]


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return pd.read_csv(EXAMPLES / "penguins.csv").dropna(subset=["body_mass_g"]).reset_index(drop=True)


def _pipeline(est: Any, scale: bool) -> Pipeline:
    num = Pipeline([("impute", SimpleImputer(strategy="median"))] + ([("scale", StandardScaler())] if scale else []))
    pre = ColumnTransformer([("num", num, NUM), ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                                                          CAT)], sparse_threshold=0.0)
    return Pipeline([("pre", pre), ("model", est)])


CLASSIFIERS = {
    "random_forest": lambda: ensemble.RandomForestClassifier(n_estimators=25, random_state=0),
    "extra_trees": lambda: ensemble.ExtraTreesClassifier(n_estimators=25, random_state=0),
    "decision_tree": lambda: tree.DecisionTreeClassifier(max_depth=6, random_state=0),
    "gradient_boosting": lambda: ensemble.GradientBoostingClassifier(n_estimators=20, random_state=0),
    "hist_gradient_boosting": lambda: ensemble.HistGradientBoostingClassifier(max_iter=20, random_state=0),
    "logistic_regression": lambda: linear_model.LogisticRegression(max_iter=2000),
}
REGRESSORS = {
    "random_forest": lambda: ensemble.RandomForestRegressor(n_estimators=20, random_state=0),
    "extra_trees": lambda: ensemble.ExtraTreesRegressor(n_estimators=20, random_state=0),
    "decision_tree": lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=0),
    "gradient_boosting": lambda: ensemble.GradientBoostingRegressor(n_estimators=20, random_state=0),
    "hist_gradient_boosting": lambda: ensemble.HistGradientBoostingRegressor(max_iter=20, random_state=0),
    "hist_gradient_boosting_poisson": lambda: ensemble.HistGradientBoostingRegressor(max_iter=20, loss="poisson"),
    "linear_regression": lambda: linear_model.LinearRegression(),
    "ridge": lambda: linear_model.Ridge(alpha=1.0),
}


# -- the reference -------------------------------------------------------------------------------------------
def _groups(pipe: Pipeline, features: list[str]) -> np.ndarray:
    """[D, F] 0/1: which input feature each of the estimator's columns comes from, by sklearn's own bookkeeping."""
    ct = pipe.named_steps["pre"]
    width = sum(s.stop - s.start for s in ct.output_indices_.values())
    g = np.zeros((width, len(features)))
    for name, trans, cols in ct.transformers_:
        sl = ct.output_indices_[name]
        if sl.stop == sl.start:
            continue
        widths = [len(c) for c in trans.categories_] if isinstance(trans, OneHotEncoder) else [1] * len(cols)
        start = sl.start
        for col, w in zip(cols, widths, strict=True):
            g[start:start + w, features.index(col)] = 1.0
            start += w
    return g


def _leaf_mean_values(left: np.ndarray, right: np.ndarray, weight: np.ndarray, leaf: np.ndarray) -> np.ndarray:
    """A node's value as the weighted mean of the leaves below it (recursion from the root)."""
    out = np.zeros_like(leaf, dtype=np.float64)

    def visit(n: int) -> tuple[np.ndarray, float]:
        if left[n] == -1:
            out[n] = leaf[n]
            return leaf[n] * weight[n], float(weight[n])
        a, wa = visit(int(left[n]))
        b, wb = visit(int(right[n]))
        out[n] = (a + b) / (wa + wb)
        return a + b, wa + wb

    visit(0)
    return out


def _saabas(indicator: Any, left: np.ndarray, right: np.ndarray, feature: np.ndarray, values: np.ndarray,
            width: int) -> np.ndarray:
    """[N, D, K]: Σ over the nodes of each row's path of value(node) - value(parent), given to the parent's feature."""
    k = values.shape[1]
    parent = np.full(len(left), -1)
    for n in range(len(left)):
        if left[n] != -1:
            parent[left[n]] = parent[right[n]] = n
    m = np.zeros((len(left), width * k))
    for n in range(1, len(left)):
        p = parent[n]
        m[n, feature[p] * k:(feature[p] + 1) * k] = values[n] - values[p]
    return np.asarray(indicator @ m).reshape(-1, width, k)


def _tree_reference(est: Any, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(margin-or-probability contributions [N, D, K], bias [K], link) of a fitted tree model on z."""
    name = type(est).__name__
    width = z.shape[1]
    if name.startswith("HistGradientBoosting"):
        k = est.n_trees_per_iteration_
        total, bias = np.zeros((len(z), width, k)), np.asarray(est._baseline_prediction, float).reshape(-1).copy()
        for it in est._predictors:
            for j, pred in enumerate(it):
                nd = pred.nodes
                lf = nd["is_leaf"].astype(bool)
                left = np.where(lf, -1, nd["left"].astype(int))
                right = nd["right"].astype(int)
                values = _leaf_mean_values(left, right, nd["count"].astype(float), nd["value"].astype(float))
                # the path by walking the nodes in double, as HistGradientBoosting does
                ind = np.zeros((len(z), len(nd)))
                at, rows = np.zeros(len(z), dtype=int), np.arange(len(z))
                ind[rows, 0] = 1
                while np.any(left[at] != -1):
                    inner = left[at] != -1
                    x = z[rows, nd["feature_idx"][at]]
                    go_left = np.where(np.isnan(x), nd["missing_go_to_left"][at].astype(bool),
                                       x <= nd["num_threshold"][at])
                    at = np.where(inner, np.where(go_left, left[at], right[at]), at)
                    ind[rows, at] = 1
                vals = np.zeros((len(nd), k))
                vals[:, j] = values
                total += _saabas(ind, left, right, nd["feature_idx"].astype(int), vals, width)
                bias[j] += values[0]
        link = "identity" if name.endswith("Regressor") else ("sigmoid" if k == 1 else "softmax")
        if name.endswith("Regressor") and est.loss == "poisson":
            link = "exp"
        return total, bias, link
    z32 = z.astype(np.float32)
    if name.startswith("GradientBoosting"):
        k = est.estimators_.shape[1]
        total = np.zeros((len(z), width, k))
        bias = np.asarray(est._raw_predict_init(z32[:1]), float).reshape(-1).copy()
        for stage in est.estimators_:
            for j, t in enumerate(stage):
                tr = t.tree_
                raw = tr.value[:, 0, 0]
                if name.endswith("Classifier"):  # log-loss leaves are Newton-updated: inner values from the leaves
                    raw = _leaf_mean_values(tr.children_left, tr.children_right, tr.weighted_n_node_samples, raw)
                vals = np.zeros((tr.node_count, k))
                vals[:, j] = est.learning_rate * raw
                total += _saabas(t.decision_path(z32), tr.children_left, tr.children_right, tr.feature, vals, width)
                bias[j] += vals[0, j]
        return total, bias, "identity" if name.endswith("Regressor") else ("sigmoid" if k == 1 else "softmax")
    members = [est] if hasattr(est, "tree_") else list(est.estimators_)
    k = len(est.classes_) if hasattr(est, "classes_") else 1
    total, bias = np.zeros((len(z), width, k)), np.zeros(k)
    for t in members:
        tr = t.tree_
        vals = tr.value[:, 0, :k].astype(float)
        if hasattr(est, "classes_"):  # proportions, as predict_proba
            vals = vals / vals.sum(axis=1, keepdims=True)
        total += _saabas(t.decision_path(z32), tr.children_left, tr.children_right, tr.feature, vals, width)
        bias += vals[0]
    return total / len(members), bias / len(members), "identity"


def _to_output(c: np.ndarray, bias: np.ndarray, link: str, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The documented margin -> output mapping (integrated gradients of the link; the secant for one margin)."""
    def secant(c: np.ndarray, delta: np.ndarray, deriv: np.ndarray) -> np.ndarray:
        dm = c.sum(axis=1)
        slope = np.where(np.abs(dm) > 1e-9, delta / np.where(np.abs(dm) > 1e-9, dm, 1.0), deriv)
        return c * slope[:, None, :]

    if link == "sigmoid":
        pb1 = 1 / (1 + np.exp(-bias[0]))
        c1 = secant(c, out[:, 1:] - pb1, out[:, 1:] * (1 - out[:, 1:]))
        return np.concatenate([-c1, c1], axis=2), np.array([1 - pb1, pb1])
    if link == "softmax":  # integrated gradients along m_bias + t * dm, by a finer quadrature than the graph's
        t, w = np.polynomial.legendre.leggauss(200)
        t, w = (t + 1) / 2, w / 2
        m = bias[None, None, :] + t[None, :, None] * c.sum(axis=1)[:, None, :]  # [N, T, K]
        p = np.exp(m - m.max(axis=2, keepdims=True))
        p /= p.sum(axis=2, keepdims=True)
        jac = np.einsum("t,ntk,kj->nkj", w, p, np.eye(len(bias))) - np.einsum("t,ntk,ntj->nkj", w, p, p)
        pb = np.exp(bias - bias.max()) / np.exp(bias - bias.max()).sum()
        return np.einsum("nfj,nkj->nfk", c, jac), pb
    if link == "exp":
        vb = np.exp(bias)
        return secant(c, out - vb, out), vb
    return c, bias


def _reference(pipe: Pipeline, x: pd.DataFrame, features: list[str], task: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = np.asarray(pipe.named_steps["pre"].transform(x), dtype=np.float64)
    est = pipe.named_steps["model"]
    group = _groups(pipe, features)
    out = pipe.predict_proba(x) if task == "classification" else pipe.predict(x).reshape(-1, 1)
    if isinstance(est, linear_model.LogisticRegression | linear_model.LinearRegression | linear_model.Ridge):
        coef = np.atleast_2d(est.coef_)
        mean = z.mean(axis=0)
        per_col = (z - mean)[:, :, None] * coef.T[None, :, :]
        bias = np.atleast_1d(est.intercept_).astype(float) + mean @ coef.T
        link = "identity" if task == "regression" else ("sigmoid" if coef.shape[0] == 1 else "softmax")
    else:
        per_col, bias, link = _tree_reference(est, z)
    c = np.einsum("df,ndk->nfk", group, per_col)  # one-hot columns summed back to their input feature
    c, bias = _to_output(c, bias, link, out)
    return c, bias, out


def _schema(pipe: Pipeline, x: pd.DataFrame, task: str) -> Schema:
    features = tuple(infer_features(x, pipeline=pipe))
    if task == "classification":
        classes = tuple(c.item() if hasattr(c, "item") else c for c in pipe.classes_)
        return Schema(features=features, task=task, classes=classes,
                      outputs={"label": "label", "probabilities": "probabilities"})
    return Schema(features=features, task=task, outputs={"value": "variable"})


def _check(pipe: Pipeline, x: pd.DataFrame, task: str) -> None:
    schema = _schema(pipe, x, task)
    built = build_explanations(pipe, schema, x, graph_name="t", plot=False)
    assert built.info["available"], built.info
    ex = Explainer(built.files["explain.onnx"], schema, source=Path("explain.onnx")).explain(rows_to_json(x, schema))
    ref_c, ref_bias, ref_out = _reference(pipe, x, list(schema.names), task)
    contrib = ex.contributions if task == "classification" else ex.contributions[:, :, None]
    output = ex.output if task == "classification" else ex.output[:, None]
    scale = max(1.0, float(np.max(np.abs(ref_out))))
    # what is explained is the model's answer (sklearn's, to the export's parity bound)
    assert np.max(np.abs(output - ref_out)) <= 1e-5 * scale
    # the sum: bias + contributions == output (the bound, 1e-6; float64 rounding in fact)
    assert np.max(np.abs(ex.bias + ex.contributions.sum(axis=1) - ex.output)) <= 1e-6
    # agreement with the reference: float32 tree sums (~6e-8 relative) are all that may differ
    assert np.max(np.abs(np.asarray(ex.bias).reshape(-1) - ref_bias)) <= 1e-9 * scale
    diff = np.max(np.abs(contrib - ref_c))
    assert diff <= 2e-6 * scale, diff
    # and they are not trivially zero: the features that matter move the answer
    assert np.max(np.abs(ref_c)) > 0.01 * (1.0 if task == "classification" else scale)


@pytest.mark.parametrize("binary", [False, True], ids=["3 classes", "binary"])
@pytest.mark.parametrize("family", sorted(CLASSIFIERS))
def test_classifier_contributions_sum_to_the_probabilities_and_match_the_reference(
        penguins: pd.DataFrame, family: str, binary: bool) -> None:
    x = penguins[NUM + CAT]
    y = penguins["species"] == "Adelie" if binary else penguins["species"]
    pipe = _pipeline(CLASSIFIERS[family](), scale=family == "logistic_regression").fit(x, y)
    _check(pipe, x, "classification")


@pytest.mark.parametrize("family", sorted(REGRESSORS))
def test_regressor_contributions_sum_to_the_value_and_match_the_reference(penguins: pd.DataFrame, family: str) -> None:
    x = penguins[NUM + CAT]
    scale = family in ("linear_regression", "ridge")
    pipe = _pipeline(REGRESSORS[family](), scale=scale).fit(x, penguins["body_mass_g"])
    _check(pipe, x, "regression")


def test_one_hot_columns_are_summed_back_to_their_feature(penguins: pd.DataFrame) -> None:
    """A linear model: island's contribution is the sum of its three indicator columns' terms, and changing the
    island moves that one contribution only."""
    x = penguins[NUM + CAT]
    pipe = _pipeline(linear_model.Ridge(), scale=True).fit(x, penguins["body_mass_g"])
    schema = _schema(pipe, x, "regression")
    built = build_explanations(pipe, schema, x, graph_name="t")
    explainer = Explainer(built.files["explain.onnx"], schema, source=Path("explain.onnx"))
    rows = rows_to_json(x.head(1), schema)
    moved = [{**rows[0], "island": next(i for i in ("Biscoe", "Dream", "Torgersen") if i != rows[0]["island"])}]
    a, b = explainer.explain(rows), explainer.explain(moved)
    i = a.features.index("island")
    others = [j for j in range(len(a.features)) if j != i]
    # (to rounding: the graph shares out what float64 rounding leaves of the sum)
    assert np.allclose(a.contributions[0, others], b.contributions[0, others], rtol=0, atol=1e-9)
    ct, coef = pipe.named_steps["pre"], pipe.named_steps["model"].coef_
    z = ct.transform(x)
    cols = np.arange(ct.output_indices_["cat"].start, ct.output_indices_["cat"].start + 3)  # island's indicators
    want = float(((z[:1, cols] - z[:, cols].mean(axis=0)) * coef[cols]).sum())
    assert abs(a.contributions[0, i] - want) <= 1e-9
    assert abs((b.output[0] - a.output[0]) - (b.contributions[0, i] - a.contributions[0, i])) <= 1e-9


def test_unexplained_family_says_which(penguins: pd.DataFrame) -> None:
    x = penguins[NUM + CAT]
    pipe = _pipeline(neighbors.KNeighborsClassifier(), scale=True).fit(x, penguins["species"])
    built = build_explanations(pipe, _schema(pipe, x, "classification"), x, graph_name="t")
    assert built.files == {}
    assert built.info["available"] is False
    assert built.info["reason"].startswith("KNeighborsClassifier is not explained")


def test_importances_are_mean_absolute_contributions(penguins: pd.DataFrame) -> None:
    x = penguins[NUM + CAT]
    pipe = _pipeline(CLASSIFIERS["random_forest"](), scale=False).fit(x, penguins["species"])
    schema = _schema(pipe, x, "classification")
    built = build_explanations(pipe, schema, x, graph_name="t")
    ref_c, _, _ = _reference(pipe, x, list(schema.names), "classification")
    want = np.abs(ref_c).mean(axis=(0, 2))
    got = built.info["importances"]
    assert list(got) == [schema.names[i] for i in np.argsort(-want, kind="stable")]
    for name, v in got.items():
        assert abs(v - want[list(schema.names).index(name)]) <= 1e-6
    assert importances  # the public helper the card uses
    assert built.files["report/importances.png"].startswith(b"\x89PNG")


def test_a_forest_too_big_to_explain_is_refused_with_its_size(penguins: pd.DataFrame,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import skedge.exporter.onnx.explain as graph

    x = penguins[NUM + CAT]
    pipe = _pipeline(CLASSIFIERS["random_forest"](), scale=False).fit(x, penguins["species"])
    monkeypatch.setattr(graph, "MAX_LEAF_WEIGHTS", 500)
    built = build_explanations(pipe, _schema(pipe, x, "classification"), x, graph_name="t", plot=False)
    assert built.files == {} and built.info["available"] is False
    assert "RandomForestClassifier: its explanation graph would hold over 500 leaf weights" in built.info["reason"]
