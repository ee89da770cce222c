"""The feature layer: a ColumnTransformer built from the schema, made to export exactly.

* numbers: median (or mean) imputation in float64; optional outlier clipping;
  standard scaling only for estimators that need it (never in front of trees).
* categories: one-hot with unknown categories ignored. Missing is a category
  of its own by default (sklearn sees NaN, the ONNX graph sees U+FFFF: the one
  rule lives in ``skedge.runtime.missing``), or is imputed with
  the most frequent value.
* ``OutlierClipper``: skedge's own step, with its ONNX converter in the
  exporter's table (``skedge.exporter.onnx.clipper``): the worked example of a
  custom step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from skedge.runtime._schema import Schema

from .config import ClipConfig, FeaturesConfig

__all__ = ["OutlierClipper", "build_preprocessor"]


class OutlierClipper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip each column to bounds learned in training (quantiles or IQR fences); NaN passes through."""

    def __init__(self, method: str = "quantile", lower: float = 0.005, upper: float = 0.995,
                 factor: float = 3.0) -> None:
        self.method = method
        self.lower = lower
        self.upper = upper
        self.factor = factor

    def fit(self, X: Any, y: Any = None) -> OutlierClipper:
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        if self.method == "quantile":
            lo = np.nanquantile(X, self.lower, axis=0)
            hi = np.nanquantile(X, self.upper, axis=0)
        elif self.method == "iqr":
            q1, q3 = np.nanquantile(X, 0.25, axis=0), np.nanquantile(X, 0.75, axis=0)
            lo, hi = q1 - self.factor * (q3 - q1), q3 + self.factor * (q3 - q1)
        else:
            raise ValueError(f"method must be 'quantile' or 'iqr', got {self.method!r}")
        # a column with no values at all: no bounds
        self.lower_ = np.where(np.isnan(lo), -np.inf, lo).astype(np.float64)
        self.upper_ = np.where(np.isnan(hi), np.inf, hi).astype(np.float64)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return np.minimum(np.maximum(X, self.lower_), self.upper_)


def build_preprocessor(schema: Schema, cfg: FeaturesConfig, *, scale: bool) -> ColumnTransformer:
    numeric = [f.name for f in schema.features if f.kind in ("number", "integer", "boolean")]
    categorical = [f.name for f in schema.features if f.kind == "category"]
    parts = []
    if numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=cfg.numeric_impute))]
        clip: ClipConfig | None = cfg.clip_outliers
        if clip is not None:
            steps.append(("clip", OutlierClipper(clip.method, clip.lower, clip.upper, clip.factor)))
        if scale:
            steps.append(("scale", StandardScaler()))
        parts.append(("num", Pipeline(steps), numeric))
    if categorical:
        ohe = OneHotEncoder(handle_unknown="ignore" if cfg.unknown_categories == "ignore" else "error",
                            sparse_output=False)
        if cfg.categorical_missing == "most_frequent":
            parts.append(("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                           ("onehot", ohe)]), categorical))
        else:
            parts.append(("cat", ohe, categorical))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
