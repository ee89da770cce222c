"""Mutation check of the parity proof (issue 11.6): break a converter on purpose, export must refuse.

Each test monkeypatches one converter detail the way a plausible bug would change it, then asserts that
``export`` raises ``ParityError`` naming the target and writes nothing. A sweep that let one of these
through would prove nothing. Every mutation is run for ONNX (``targets=["onnx"]``) and for Core ML
(``targets=["onnx", "coreml"]``: the ONNX side is untouched, so the refusal is Core ML's). A control
test exports the same pipelines unbroken, so a refusal is the mutation's doing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skedge.exporter import export
from skedge.exporter.coreml import trees as ml_trees
from skedge.exporter.onnx import _table as onnx_table
from skedge.exporter.onnx import trees as onnx_trees
from skedge.exporter.onnx._builder import DOUBLE
from skedge.runtime._errors import ParityError


def _data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    # coarse values (two decimals, integers): thresholds fall on values a row can hold exactly
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(10, 3, n).round(2), "b": rng.exponential(2.0, n).round(3),
                       "c": rng.integers(0, 50, n).astype(float)})
    y = (df["a"] / 3 + df["b"] - df["c"] / 25 + rng.normal(0, 0.5, n) > 3).astype(int).to_numpy()
    return df, y


@pytest.fixture(scope="module")
def forest() -> tuple[Any, pd.DataFrame]:
    df, y = _data()
    return Pipeline([("impute", SimpleImputer()),
                     ("model", RandomForestClassifier(n_estimators=6, max_depth=6, random_state=0))]).fit(df, y), df


@pytest.fixture(scope="module")
def hgb_nan() -> tuple[Any, pd.DataFrame]:
    """No imputer: NaN reaches the trees, which route it as training learned (missing_go_to_left)."""
    df, y = _data(seed=1)
    df.loc[np.random.default_rng(2).random(len(df)) < 0.2, "a"] = np.nan
    return HistGradientBoostingClassifier(max_iter=8, random_state=0).fit(df, y), df


@pytest.fixture(scope="module")
def forest_nan() -> tuple[Any, pd.DataFrame]:
    """A forest that saw NaN (no imputer): its nodes route missing values as training learned."""
    df, y = _data(seed=4)
    df.loc[np.random.default_rng(5).random(len(df)) < 0.2, "a"] = np.nan
    return RandomForestClassifier(n_estimators=6, max_depth=6, random_state=0).fit(df, y), df


@pytest.fixture(scope="module")
def scaled_boosting() -> tuple[Any, pd.DataFrame]:
    df, y = _data(seed=3)
    target = df["a"] * 10 + df["b"] * 3 + y
    return Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()),
                     ("model", GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0))]
                    ).fit(df, target), df


def _refused(model: tuple[Any, pd.DataFrame], target: str, tmp_path: Path) -> None:
    pipe, df = model
    targets = ["onnx"] if target == "onnx" else ["onnx", target]
    with pytest.raises(ParityError, match=f"the {target} export does not answer like sklearn"):
        export(pipe, df, tmp_path, name="mutant", targets=targets)
    assert not (tmp_path / "mutant").exists()  # nothing written


@pytest.mark.parametrize("model", ["forest", "forest_nan", "hgb_nan", "scaled_boosting"])
def test_unbroken_converters_pass(model: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    pipe, df = request.getfixturevalue(model)
    path = export(pipe, df, tmp_path, name="control", targets=["onnx", "coreml"])
    assert (path / "model.onnx").exists() and (path / "model.mlmodel").exists()


# -- ONNX ------------------------------------------------------------------------------------------
def _onnx_add_tree(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    original = onnx_trees.Ensemble.add_tree

    def add_tree(self: Any, left: Any, right: Any, feature: Any, threshold: Any, missing_left: Any,
                 leaf_weights: Any, hot: Any = None) -> None:
        start = len(self.modes)
        threshold, missing_left = change(np.asarray(threshold, dtype=np.float64), np.asarray(missing_left))
        original(self, left, right, feature, threshold, missing_left, leaf_weights, hot)
        if change is _lt:
            self.modes[start:] = ["BRANCH_LT" if m == "BRANCH_LEQ" else m for m in self.modes[start:]]

    monkeypatch.setattr(onnx_trees.Ensemble, "add_tree", add_tree)


def _lt(threshold: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return threshold, missing


def test_onnx_leq_turned_lt(forest: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _onnx_add_tree(monkeypatch, _lt)
    _refused(forest, "onnx", tmp_path)


def test_onnx_float32_cast_dropped(forest: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(onnx_trees, "_float32_input",
                        lambda g, x: g.cast(g.matrix(x, "tree_in"), DOUBLE, "tree_in_d"))
    _refused(forest, "onnx", tmp_path)


def test_onnx_threshold_one_ulp_down(hgb_nan: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _onnx_add_tree(monkeypatch, lambda t, m: (np.nextafter(t, -np.inf), m))
    _refused(hgb_nan, "onnx", tmp_path)


def test_onnx_missing_routing_dropped(hgb_nan: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _onnx_add_tree(monkeypatch, lambda t, m: (t, np.zeros_like(m)))
    _refused(hgb_nan, "onnx", tmp_path)


def _onnx_flipped(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """Break only the nodes turned around for speed (``Ensemble._node_attributes``)."""
    original = onnx_trees.Ensemble._node_attributes

    def attributes(self: Any, width: int, floats: bool, hint: str) -> dict[str, Any]:
        attrs = original(self, width, floats, hint)
        flip = np.asarray(self.flipped, dtype=bool)
        assert flip.any(), "the mutation needs flipped nodes to break"
        change(attrs, flip)
        return attrs

    monkeypatch.setattr(onnx_trees.Ensemble, "_node_attributes", attributes)


def _flipped_threshold_not_stepped_down(attrs: dict[str, Any], flip: np.ndarray) -> None:
    # -x <= -t instead of -x <= nextbelow(-t): a row exactly on the threshold goes right instead of left
    v = np.asarray(attrs["nodes_values"], dtype=np.float32)
    v[flip] = np.nextafter(v[flip], np.float32(np.inf))
    attrs["nodes_values"] = v.tolist()


def _flipped_missing_track_kept(attrs: dict[str, Any], flip: np.ndarray) -> None:
    m = np.asarray(attrs["nodes_missing_value_tracks_true"])
    attrs["nodes_missing_value_tracks_true"] = np.where(flip, 1 - m, m).tolist()  # undo the inversion


def test_onnx_flipped_threshold_not_stepped_down(forest: Any, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    _onnx_flipped(monkeypatch, _flipped_threshold_not_stepped_down)
    _refused(forest, "onnx", tmp_path)


def test_onnx_flipped_missing_track_not_inverted(forest_nan: Any, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    _onnx_flipped(monkeypatch, _flipped_missing_track_kept)
    _refused(forest_nan, "onnx", tmp_path)


def test_onnx_class_order_swapped(forest: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = onnx_trees._proportions
    monkeypatch.setattr(onnx_trees, "_proportions", lambda value, k: original(value, k)[::-1].copy())
    _refused(forest, "onnx", tmp_path)


def test_onnx_scaler_in_float32(scaled_boosting: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = onnx_table.ONNX_CONVERTERS[StandardScaler]

    class Float32Scaler:
        def __init__(self, s: Any) -> None:
            self.__dict__.update(vars(s))
            self.mean_ = s.mean_.astype(np.float32).astype(np.float64)
            self.scale_ = s.scale_.astype(np.float32).astype(np.float64)

    monkeypatch.setitem(onnx_table.ONNX_CONVERTERS, StandardScaler,
                        lambda g, s, x, ctx: original(g, Float32Scaler(s), x, ctx))
    _refused(scaled_boosting, "onnx", tmp_path)


# -- Core ML ---------------------------------------------------------------------------------------
def _coreml_add_tree(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    original = ml_trees.Ensemble.add_tree

    def add_tree(self: Any, left: Any, right: Any, feature: Any, threshold: Any, missing_left: Any,
                 leaves: Any) -> None:
        threshold, missing_left = change(np.asarray(threshold, dtype=np.float64), np.asarray(missing_left))
        original(self, left, right, feature, threshold, missing_left, leaves)

    monkeypatch.setattr(ml_trees.Ensemble, "add_tree", add_tree)


def test_coreml_leq_turned_lt(forest: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = ml_trees.Ensemble.__init__

    def init(self: Any, dims: int, base: Any) -> None:
        original(self, dims, base)
        self._leq = ml_trees.proto().TreeEnsemble_pb2.TreeEnsembleParameters.TreeNode.BranchOnValueLessThan

    monkeypatch.setattr(ml_trees.Ensemble, "__init__", init)
    _refused(forest, "coreml", tmp_path)


def test_coreml_float32_cast_dropped(forest: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the double x compared with t itself
    monkeypatch.setattr(ml_trees, "float32_splits", lambda t: np.asarray(t, dtype=np.float64))
    _refused(forest, "coreml", tmp_path)


def test_coreml_threshold_one_ulp_down(forest: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _coreml_add_tree(monkeypatch, lambda t, m: (np.nextafter(t, -np.inf), m))
    _refused(forest, "coreml", tmp_path)


def test_coreml_hgb_threshold_one_ulp_down(hgb_nan: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _coreml_add_tree(monkeypatch, lambda t, m: (np.nextafter(t, -np.inf), m))
    _refused(hgb_nan, "coreml", tmp_path)


def test_coreml_missing_routing_dropped(hgb_nan: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _coreml_add_tree(monkeypatch, lambda t, m: (t, np.zeros_like(m)))
    _refused(hgb_nan, "coreml", tmp_path)


def test_coreml_class_order_swapped(forest: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = ml_trees.argmax_label
    monkeypatch.setattr(ml_trees, "argmax_label",
                        lambda b, proba, classes, name: original(b, proba, list(classes)[::-1], name))
    _refused(forest, "coreml", tmp_path)


def test_coreml_scaler_in_float32(scaled_boosting: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The fold maps thresholds through sklearn's scaler in double; a float32 scaler maps them wrongly."""
    def transform32(self: Any, step: Any, j: int, u: np.ndarray) -> np.ndarray:
        mean, scale = np.float32(step.mean_[j]), np.float32(step.scale_[j])
        with np.errstate(all="ignore"):
            z = (u.astype(np.float32) - mean) / scale
        return z.astype(np.float64)

    monkeypatch.setattr(ml_trees._Fold, "_transform", transform32)
    _refused(scaled_boosting, "coreml", tmp_path)


# -- discontinuities of preprocessing steps (not trees) --------------------------------------------
@pytest.fixture(scope="module")
def binarized() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import Binarizer

    df, y = _data(seed=4)
    # the scaler moves the threshold off the coarse values a row holds: only a swept row lands on it
    return Pipeline([("scale", StandardScaler()), ("bin", Binarizer(threshold=0.25)),
                     ("model", LogisticRegression())]).fit(df, y), df


def test_binarizer_unbroken_passes_and_its_threshold_is_swept(binarized: Any, tmp_path: Path) -> None:
    import json

    path = export(*binarized, tmp_path, name="control", targets=["onnx"])
    kinds = json.loads((path / "golden.json").read_text())["kinds"]
    assert sum(k.startswith("edge:Binarizer:") for k in kinds) >= 3 * 2  # each column, both sides


def test_onnx_binarizer_gt_turned_ge(binarized: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """skl2onnx's own Binarizer bug (x == threshold -> 1): the sweep places rows exactly on the threshold."""
    from skedge.exporter.onnx import transforms

    original = transforms.convert_binarizer

    def ge(g: Any, step: Any, x: Any, ctx: Any) -> Any:
        g.op1, op1 = (lambda op, *a, **k: op1("GreaterOrEqual" if op == "Greater" else op, *a, **k)), g.op1
        try:
            return original(g, step, x, ctx)
        finally:
            g.op1 = op1

    monkeypatch.setitem(onnx_table.ONNX_CONVERTERS, __import__("sklearn.preprocessing").preprocessing.Binarizer, ge)
    _refused(binarized, "onnx", tmp_path)


@pytest.mark.parametrize("encode", ["onehot-dense", "ordinal"])
def test_kbins_edges_are_swept(tmp_path: Path, encode: str) -> None:
    """skedge's KBinsDiscretizer is exact on rows placed on every edge (skl2onnx's was 0.39 off there)."""
    import json

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import KBinsDiscretizer

    from skedge.runtime import load

    df, y = _data(seed=5)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("bins", KBinsDiscretizer(n_bins=4, encode=encode, strategy="quantile",
                                               quantile_method="averaged_inverted_cdf")),
                     ("model", LogisticRegression())]).fit(df, y)
    path = export(pipe, df, tmp_path, name="kbins", targets=["onnx"])
    golden = json.loads((path / "golden.json").read_text())
    edge_rows = [r for r, k in zip(golden["rows"], golden["kinds"], strict=True) if k == "edge:KBinsDiscretizer:a"]
    # every inner edge of column a, mapped back through the scaler, has a row on each side of it
    edges = pipe.named_steps["scale"].inverse_transform(
        np.column_stack([e[1:-1] for e in pipe.named_steps["bins"].bin_edges_]))[:, 0]
    for e in edges:
        assert any(abs(r["a"] - e) <= 4 * np.spacing(e) for r in edge_rows), e
    rows = pd.DataFrame(edge_rows)
    got = load(path).predict_proba(rows.to_dict("records"))
    np.testing.assert_allclose(got, pipe.predict_proba(rows), rtol=0, atol=1e-12)
