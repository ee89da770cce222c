"""LightGBM exact (issue 12.3): skedge's own converter compares double inputs with LightGBM's double thresholds.

onnxmltools' trees compare in float32 and were measured 0.11 probability off on rows one float64 step from a
threshold; these tests put rows exactly there (the threshold, its float64 neighbours, its float32 rounding and
that float's neighbour), plus NaN where training had missing values and where it had none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skedge.exporter import export
from skedge.runtime import load

lightgbm = pytest.importorskip("lightgbm")


def _frame(loader: Any, nan_rate: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    X, y = loader(return_X_y=True, as_frame=True)
    X.columns = [f"f{i}" for i in range(X.shape[1])]
    if nan_rate:
        rng = np.random.default_rng(0)
        X = X.mask(rng.random(X.shape) < nan_rate)
    return X, y


def _threshold_rows(est: Any, X: pd.DataFrame) -> pd.DataFrame:
    booster = est.booster_ if hasattr(est, "booster_") else est.steps[-1][1].booster_
    splits: list[tuple[int, float]] = []

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            splits.append((node["split_feature"], node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    base = X.median().to_numpy()
    rows = []
    for f, t in splits:
        t32 = np.float32(t)
        for v in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), float(t32),
                  float(np.nextafter(t32, np.float32(np.inf)))):
            r = base.copy()
            r[f] = v
            rows.append(r)
    nan_row = base.copy()
    nan_row[:] = np.nan
    rows.append(nan_row)
    return pd.DataFrame(rows, columns=X.columns)


@pytest.mark.parametrize(("kind", "nan_rate"), [("binary", 0.0), ("binary", 0.1), ("multiclass", 0.1),
                                                ("regression", 0.0), ("regression", 0.1)])
def test_lightgbm_is_exact_on_its_thresholds(kind: str, nan_rate: float, tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
    from sklearn.pipeline import make_pipeline

    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind]
    X, y = _frame(loader, nan_rate)
    cls = lightgbm.LGBMRegressor if kind == "regression" else lightgbm.LGBMClassifier
    pipe = make_pipeline(cls(n_estimators=15, num_leaves=8, n_jobs=1, random_state=0, verbose=-1)).fit(X, y)
    model = load(export(pipe, X, tmp_path, name="lgbm", targets=("onnx",)))
    rows = _threshold_rows(pipe, X)
    assert len(rows) > 100
    if kind == "regression":
        np.testing.assert_allclose(model.predict(rows), pipe.predict(rows), rtol=1e-6, atol=1e-6)
        return
    assert model.predict(rows).tolist() == pipe.predict(rows).tolist()
    diff = np.abs(model.predict_proba(rows) - pipe.predict_proba(rows)).max()
    assert diff < 1e-6, diff  # measured ~1e-8; onnxmltools' float32 trees: 0.11


def test_lightgbm_categorical_splits_are_refused(tmp_path: Path) -> None:
    from skedge.exporter import ExportError

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "k": rng.integers(0, 6, 300).astype(float)})
    y = (X["a"] + (X["k"] % 3 == 0)).gt(0.5).astype(int)
    est = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1, min_data_per_group=5, cat_smooth=1)
    est.fit(X, y, categorical_feature=["k"])
    with pytest.raises(ExportError, match="LightGBM categorical splits are not supported"):
        export(est, X, tmp_path, name="cat", targets=("onnx",))


def test_the_export_sweep_probes_every_booster_split_and_catches_float32_trees(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof itself (not this file's own rows) places rows on LightGBM's and XGBoost's thresholds, so
    onnxmltools' float32 LightGBM trees are refused by export, with no help from a test."""
    import json

    from sklearn.datasets import load_breast_cancer
    from sklearn.pipeline import make_pipeline

    from skedge.exporter import ParityError

    X, y = _frame(load_breast_cancer)
    pipe = make_pipeline(lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, n_jobs=1, random_state=0,
                                                 verbose=-1)).fit(X, y)
    path = export(pipe, X, tmp_path, name="lgbm", targets=("onnx",))
    sweep = json.loads((path / "manifest.json").read_text())["parity_sweep"]
    splits = [(n["split_feature"], n["threshold"]) for t in pipe[-1].booster_.dump_model()["tree_info"]
              for n in _split_nodes(t["tree_structure"])]
    assert sweep["tree_splits"] == len(splits) and sweep["boundaries_probed"] == len(set(splits))
    # onnxmltools' way: thresholds rounded to float32 (what its float trees compare against)
    from skedge.exporter.onnx import lgbm

    class Float32Trees(lgbm.Ensemble):  # type: ignore[misc,valid-type]
        def add_tree(self, left: Any, right: Any, feature: Any, threshold: Any, *rest: Any) -> Any:
            return super().add_tree(left, right, feature, threshold.astype(np.float32).astype(np.float64), *rest)

    monkeypatch.setattr(lgbm, "Ensemble", Float32Trees)
    with pytest.raises(ParityError, match="does not answer like sklearn"):
        export(pipe, X, tmp_path, name="lgbm_float32", targets=("onnx",))

    xgboost = pytest.importorskip("xgboost")
    xgb = make_pipeline(xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1, random_state=0)).fit(X, y)
    path = export(xgb, X, tmp_path, name="xgb", targets=("onnx",))
    sweep = json.loads((path / "manifest.json").read_text())["parity_sweep"]
    assert sweep["tree_splits"] > 0 and sweep["boundaries_probed"] > 20


def _split_nodes(node: dict[str, Any]) -> Any:
    stack = [node]
    while stack:
        n = stack.pop()
        if "split_feature" in n:
            yield n
            stack.extend((n["left_child"], n["right_child"]))
