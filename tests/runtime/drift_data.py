"""A table whose generating distribution is known, so "new rows from the training distribution" are fresh draws
(not the training rows again) and a shift is exactly one feature moved. Shared by the drift tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = ("x_normal", "x_skewed", "x_count", "x_gappy")
CATEGORY = ("c_small", "c_wide")
SMALL = ("a", "b", "c", "d")
SMALL_P = (0.5, 0.3, 0.15, 0.05)
# 30 levels, so the profile keeps the top 20 and an "other" bin
WIDE = tuple(f"w{i:02d}" for i in range(30))
WIDE_P = tuple(np.array([1 / (i + 1) for i in range(30)]) / sum(1 / (i + 1) for i in range(30)))


def table(n: int, seed: int, *, shift: str | None = None) -> pd.DataFrame:
    """``n`` rows; ``shift`` names one feature drawn from a moved distribution (the others unchanged)."""
    rng = np.random.default_rng(seed)
    x_normal = rng.normal(0.0, 1.0, n) + (0.6 if shift == "x_normal" else 0.0)
    x_skewed = rng.exponential(10.0, n)
    x_count = rng.poisson(3.0, n).astype(float)
    x_gappy = rng.normal(5.0, 2.0, n)
    x_gappy[rng.random(n) < 0.05] = np.nan
    small_p = (0.3, 0.3, 0.25, 0.15) if shift == "c_small" else SMALL_P
    frame = pd.DataFrame({
        "x_normal": x_normal, "x_skewed": x_skewed, "x_count": x_count, "x_gappy": x_gappy,
        "c_small": rng.choice(SMALL, n, p=small_p).astype(object),
        "c_wide": rng.choice(WIDE, n, p=WIDE_P).astype(object),
    })
    return frame


def labels(frame: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    score = frame["x_normal"] + 0.05 * frame["x_skewed"] + (frame["c_small"] == "a") - 0.8
    return np.where(score + rng.normal(0, 0.7, len(frame)) > 0, "yes", "no")


def pipeline(train: pd.DataFrame, y: np.ndarray) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([("num", SimpleImputer(strategy="median"), list(NUMERIC)),
                             ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORY))])
    return Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=500))]).fit(train, y)


def export_bundle(out: Path, *, reference: bool = True, n_train: int = 6000, name: str = "drift") -> Path:
    """Train on ``n_train`` rows, export with the training table as the profile's reference (or without)."""
    from skedge.exporter import export

    train = table(n_train, seed=1)
    holdout = table(600, seed=2)
    pipe = pipeline(train, labels(train, 1))
    return export(pipe, holdout, out, name=name, targets=["onnx"], **({"reference": train} if reference else {}))


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-like rows as an app sends them: None for missing."""
    out = []
    for rec in frame.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()})
    return out
