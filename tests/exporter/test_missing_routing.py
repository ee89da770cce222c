"""Trees that learned from missing values route NaN exactly as sklearn does (no imputer in front)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skedge.exporter import build

MODELS = {
    "dt_clf": lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
    "rf_clf": lambda: RandomForestClassifier(n_estimators=12, random_state=0),
    "et_clf": lambda: ExtraTreesClassifier(n_estimators=12, random_state=0),
    "hgb_clf": lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0),
    "dt_reg": lambda: DecisionTreeRegressor(max_depth=6, random_state=0),
    "rf_reg": lambda: RandomForestRegressor(n_estimators=12, random_state=0),
    "hgb_reg": lambda: HistGradientBoostingRegressor(max_iter=15, random_state=0),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_nan_routing(name: str) -> None:
    rng = np.random.default_rng(3)
    n = 500
    X = pd.DataFrame({"p": rng.normal(size=n), "q": rng.normal(size=n), "r": rng.uniform(0, 10, n)})
    # missingness that carries signal, so the trees learn where NaN goes
    y_num = X["p"].fillna(0) + (X["r"] > 5) + rng.normal(0, 0.2, n)
    X.loc[rng.random(n) < 0.2, "p"] = np.nan
    X.loc[rng.random(n) < 0.1, "r"] = np.nan
    y_num = y_num + X["p"].isna() * 2.0
    y = (y_num > 1).astype(int) if name.endswith("clf") else y_num
    model = MODELS[name]().fit(X, y)
    exported = build(model, X, name="nan", targets=("onnx",))
    (row,) = exported.parity
    golden = json.loads(exported.files["golden.json"])
    n_missing = sum(1 for r in golden["rows"] if r["p"] is None or r["r"] is None)
    assert n_missing > 20
    assert row.passed and row.label_mismatches == 0, row
