"""Small synthetic datasets for the parity matrix: numeric-only, and mixed types with missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["numeric", "mixed", "targets"]


def numeric(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.normal(0, 1, n),
        "b": rng.normal(50, 10, n),
        "c": rng.uniform(-1000, 1000, n),
        "d": rng.integers(0, 20, n).astype(np.float64),
    })


def mixed(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = numeric(n, seed)
    df["color"] = rng.choice(["red", "green", "blue"], n).astype(object)
    df["size"] = rng.choice(["S", "M", "L", "XL"], n).astype(object)
    for col, rate in (("a", 0.1), ("c", 0.05), ("color", 0.1), ("size", 0.05)):
        mask = rng.random(n) < rate
        df.loc[mask, col] = np.nan
    return df


def targets(df: pd.DataFrame, seed: int = 2) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(3-class labels, binary labels, a numeric target), made from the features so that models can learn."""
    rng = np.random.default_rng(seed)
    a = df["a"].fillna(0).to_numpy()
    b = df["b"].to_numpy()
    score = a + (b - 50) / 10 + rng.normal(0, 0.5, len(df))
    if "color" in df:
        score = score + np.where(df["color"].to_numpy() == "red", 1.0, 0.0)
    multi = pd.Series(np.digitize(score, [-0.7, 0.7]).astype(int)).map({0: "low", 1: "mid", 2: "high"})
    binary = pd.Series((score > 0).astype(int))
    value = pd.Series(3.0 * a + 0.5 * b + 0.01 * df["c"].fillna(0).to_numpy() + rng.normal(0, 1, len(df)) + 100)
    return multi, binary, value
