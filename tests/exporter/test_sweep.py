"""The export sweep (issue 11.1), the target policy (11.3) and golden rows without records (10.5).

The sweep's claim is checked against sklearn itself: for every distinct split of every tree, the sweep
holds two rows whose values of that split's feature are adjacent doubles, one that sklearn's own test
(``float32(z) <= t``, or ``z <= t`` for HistGradientBoosting, ``z`` the fitted preprocessing's column)
sends left and one it sends right. That is the boundary itself, found in input space through affine and
non-affine monotone steps alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, QuantileTransformer, StandardScaler

from skedge.exporter import build, export
from skedge.exporter._schema import infer_features
from skedge.exporter.golden import MAX_GOLDEN_THRESHOLD_ROWS, MAX_HOLDOUT, build_sweep
from skedge.exporter.parity import left_out_warning
from skedge.runtime._errors import ParityError
from skedge.runtime._schema import Schema

from .datasets import mixed, numeric, targets


def _schema(df: pd.DataFrame, task: str) -> Schema:
    return Schema(features=tuple(infer_features(df)), task=task)


def _pre(pipe: Any, frame: pd.DataFrame) -> np.ndarray:
    with np.errstate(all="ignore"):  # edge rows far below the range leave log1p's domain: NaN, as in sklearn
        return np.asarray(pipe[:-1].transform(frame), dtype=np.float64)


def _splits(est: Any) -> set[tuple[int, float]]:
    if hasattr(est, "_predictors"):
        return {(int(n["feature_idx"]), float(n["num_threshold"])) for it in est._predictors for p in it
                for n in p.nodes if not n["is_leaf"]}
    out = set()
    for tree in np.ravel(np.asarray(est.estimators_, dtype=object)):
        t = tree.tree_
        br = t.children_left != -1
        out |= set(zip(t.feature[br].tolist(), t.threshold[br].tolist(), strict=True))
    return out


def _unprobed(pipe: Any, df: pd.DataFrame, float32: bool) -> tuple[int, list[tuple[int, float]]]:
    """Splits without two sweep rows on adjacent doubles of the split's feature that sklearn's own test sends
    to different sides. Here column c of the estimator is the preprocessing of feature c alone."""
    schema = _schema(df, "classification" if hasattr(pipe, "classes_") else "regression")
    sweep, _ = build_sweep(pipe, schema, df)
    frame = pd.DataFrame({n: np.asarray(v, dtype=np.float64) for n, v in sweep.columns.items()})
    z = _pre(pipe, frame)
    splits = _splits(pipe[-1])
    missing = []
    for c, t in sorted(splits):
        x = frame[schema.names[c]].to_numpy()
        u, first = np.unique(x, return_index=True)
        zu = z[first, c]
        left = (zu.astype(np.float32).astype(np.float64) if float32 else zu) <= t
        adjacent = u[1:] == np.nextafter(u[:-1], np.inf)
        if not np.any(adjacent & (left[1:] != left[:-1])):
            missing.append((c, t))
    return len(splits), missing


@pytest.mark.parametrize("pre", ["scaler", "log1p", "quantile"])
def test_every_forest_split_is_probed_at_its_boundary(pre: str) -> None:
    X = numeric(300)
    X["b"] = X["b"].abs()
    _, binary, _ = targets(X)
    step = {"scaler": StandardScaler(), "log1p": FunctionTransformer(np.log1p, np.expm1),
            "quantile": QuantileTransformer(n_quantiles=50)}[pre]
    X = X.clip(lower=0) if pre == "log1p" else X
    pipe = Pipeline([("pre", step), ("model", RandomForestClassifier(n_estimators=4, max_depth=5, random_state=0))])
    pipe.fit(X, binary)
    n, missing = _unprobed(pipe, X, float32=True)
    assert n > 40 and missing == [], f"{len(missing)} of {n} splits not probed at their boundary: {missing[:5]}"


def test_every_hgb_split_is_probed_at_its_double_boundary() -> None:
    X = numeric(300)
    _, _, value = targets(X)
    pipe = Pipeline([("scale", StandardScaler()), ("model", HistGradientBoostingRegressor(max_iter=5))]).fit(X, value)
    n, missing = _unprobed(pipe, X, float32=False)
    assert n > 40 and missing == [], f"{len(missing)} of {n} splits not probed: {missing[:5]}"


@pytest.fixture(scope="module")
def big_forest() -> tuple[Any, pd.DataFrame]:
    X = mixed(800)
    multi, _, _ = targets(X)
    nums, cats = ["a", "b", "c", "d"], ["color", "size"]
    pipe = Pipeline([("pre", ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), nums),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats)], sparse_threshold=0.0)),
        ("model", RandomForestClassifier(n_estimators=16, random_state=0))]).fit(X, multi)
    return pipe, X


@pytest.fixture(scope="module")
def big_export(big_forest: Any) -> Any:
    pipe, X = big_forest
    return build(pipe, X, name="sweep", targets=("onnx", "coreml"))


def test_sweep_is_exhaustive_and_golden_is_a_bounded_sample(big_export: Any) -> None:
    exported = big_export
    sweep = exported.manifest["parity_sweep"]
    golden = json.loads(exported.files["golden.json"])
    # every target answered the whole sweep, which is far larger than what ships
    assert sweep["rows"] > 4 * MAX_GOLDEN_THRESHOLD_ROWS
    for target in ("onnx", "coreml"):
        assert exported.manifest["parity"][target]["rows"] == sweep["rows"]
        assert exported.manifest["parity"][target]["passed"]
    assert len(golden["rows"]) == sweep["golden_rows"]
    kinds = [k.split(":")[0] for k in golden["kinds"]]
    assert kinds.count("threshold") == MAX_GOLDEN_THRESHOLD_ROWS
    assert kinds.count("mixed") <= MAX_HOLDOUT
    assert sweep["boundaries_probed"] * 2 <= sweep["rows"]
    assert "export sweep" in exported.files["card.md"].decode()


def _records(df: pd.DataFrame, names: list[str]) -> set[tuple[Any, ...]]:
    return {tuple(None if pd.isna(v) else v for v in row) for row in df[names].itertuples(index=False)}


def test_golden_rows_hold_no_sample_record(big_forest: Any, big_export: Any) -> None:
    _, X = big_forest
    exported = big_export
    golden = json.loads(exported.files["golden.json"])
    names = list(X.columns)
    records = _records(X, names)
    shipped = [tuple(r[n] for n in names) for r in golden["rows"]]
    assert len(shipped) > 200
    assert not [r for r in shipped if r in records]
    assert "mixed" in golden["kinds"] and "holdout" not in golden["kinds"]
    card = exported.files["card.md"].decode()
    assert "no sample record whole" in card
    # the mixed rows are made of real values: every field's value occurs in that column of the sample
    mixed_rows = [r for r, k in zip(golden["rows"], golden["kinds"], strict=True) if k == "mixed"]
    for n in names:
        assert {r[n] for r in mixed_rows} <= {None if pd.isna(v) else v for v in X[n]}


def test_holdout_golden_ships_real_rows_and_says_so(big_forest: Any) -> None:
    pipe, X = big_forest
    exported = build(pipe, X, name="holdout", golden="holdout", targets=("onnx",))
    golden = json.loads(exported.files["golden.json"])
    names = list(X.columns)
    real = [r for r, k in zip(golden["rows"], golden["kinds"], strict=True) if k == "holdout"]
    assert len(real) == MAX_HOLDOUT
    assert all(tuple(r[n] for n in names) in _records(X, names) for r in real)
    assert 'real holdout rows (export.golden = "holdout")' in exported.files["card.md"].decode()


@pytest.fixture(scope="module")
def clipped_boosting() -> tuple[Any, pd.DataFrame]:
    """A pipeline whose Core ML export is not exact: MinMaxScaler(clip=True) before trees (Core ML's Scaler is
    an ulp off sklearn's arithmetic, and the clipped scaler is not folded into the thresholds)."""
    X = numeric(300)
    _, _, value = targets(X)
    pipe = Pipeline([("scale", MinMaxScaler(clip=True)),
                     ("model", GradientBoostingRegressor(n_estimators=30, random_state=0))]).fit(X, value)
    return pipe, X


def test_inexact_optional_target_is_left_out_with_its_reason(clipped_boosting: Any, tmp_path: Path) -> None:
    pipe, X = clipped_boosting
    path = export(pipe, X, tmp_path, name="clipped")
    manifest = json.loads((path / "manifest.json").read_text())
    assert (path / "model.onnx").exists() and not (path / "model.mlmodel").exists()
    assert manifest["parity"]["onnx"]["passed"] and manifest["parity"]["ort"]["passed"]
    assert "coreml" not in manifest["parity"]
    why = manifest["unavailable_targets"]["coreml"]
    dropped = manifest["dropped_targets"]["coreml"]
    assert not dropped["passed"] and dropped["max_abs_diff"] > 1e-3
    assert "does not answer like sklearn on the export sweep" in why and f"{dropped['max_abs_diff']:.3g}" in why
    card = (path / "card.md").read_text()
    assert "coreml: not exported" in card and "left out of the bundle" in card
    line = left_out_warning(manifest)
    assert line is not None and "\n" not in line and line.startswith("warning: left out of the bundle: coreml")


def test_named_targets_must_all_pass(clipped_boosting: Any, tmp_path: Path) -> None:
    pipe, X = clipped_boosting
    with pytest.raises(ParityError, match="the coreml export does not answer like sklearn"):
        export(pipe, X, tmp_path, name="clipped", targets=["onnx", "coreml"])
    assert not (tmp_path / "clipped").exists()


def test_config_names_golden_and_targets() -> None:
    """export.golden is validated like every key; the trainer passes targets on only when the config names them."""
    from pydantic import ValidationError

    from skedge.trainer.config import ExportConfig

    assert ExportConfig().golden == "mixed" and ExportConfig(golden="holdout").golden == "holdout"
    with pytest.raises(ValidationError):
        ExportConfig(golden="everything")
    assert "targets" not in ExportConfig().model_fields_set
    assert "targets" in ExportConfig(targets=["onnx", "coreml"]).model_fields_set


def test_neighbours_are_probed_halfway_between_sample_rows() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    X = numeric(200)
    multi, _, _ = targets(X)
    pipe = Pipeline([("scale", StandardScaler()), ("model", KNeighborsClassifier(n_neighbors=4))]).fit(X, multi)
    exported = build(pipe, X, name="knn", targets=("onnx",))
    kinds = json.loads(exported.files["golden.json"])["kinds"]
    assert kinds.count("tie:midpoint") == 200
    row = exported.manifest["parity"]["onnx"]
    assert row["passed"] and row["label_mismatches"] == 0, row


def test_hgb_paths_walk_the_trees_as_sklearn_does() -> None:
    """The walk that picks a base row reaching each HistGradientBoosting split: the leaves it reaches, summed,
    are sklearn's own raw scores (NaN routed as training learned), and every split is reached by some row."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from skedge.exporter._sklearn_trees import hgb_trees, tree_splits

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + X[:, 1] > 0).astype(int)
    m = HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=8, random_state=0).fit(X, y)
    splits = tree_splits(m)
    assert splits is not None and splits.paths is not None
    reach = splits.paths(X[:200]).toarray()
    raw, start = np.zeros(200), 0
    for tree in hgb_trees(m):
        for leaf, value in tree.leaves.items():
            raw += reach[:, start + leaf] * value
        start += len(tree.left)
    np.testing.assert_allclose(raw + m._baseline_prediction.ravel()[0], m._raw_predict(X[:200]).ravel(),
                               rtol=0, atol=1e-12)
    assert reach[:, splits.node].any(axis=0).all()
