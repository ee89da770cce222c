"""The two models every trained model is compared with, fitted on the same training rows.

A gate of ``accuracy = 0.65`` is met by a model that always answers the majority class when that class is
67 % of the holdout; the card shows what the majority answer and a plain linear model score, and a gate can
ask for a gain over them (``accuracy_gain_over_baseline``). Both are cheap: a prior and one linear fit over
the same feature layer (imputation, one-hot, scaling) the model has.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

__all__ = ["BASELINES", "BASELINE_RULE", "describe", "fit_baselines"]

BASELINES = ("dummy", "linear")
# what ``<metric>_gain_over_baseline`` compares with: the stronger of the two on the holdout value
BASELINE_RULE = "the better of the dummy and the linear baseline on that metric's holdout value"


def describe(task: str) -> dict[str, str]:
    if task == "classification":
        return {"dummy": "DummyClassifier(strategy='prior'): always the majority class, class priors as "
                         "probabilities",
                "linear": "LogisticRegression(max_iter=1000) over the model's feature layer, scaled"}
    return {"dummy": "DummyRegressor(strategy='mean'): always the training mean",
            "linear": "Ridge(alpha=1.0) over the model's feature layer, scaled"}


def fit_baselines(task: str, features: Callable[[], Any], X: Any, y: Any, seed: int) -> dict[str, Pipeline]:
    """Fit both baselines on (X, y); ``features()`` builds a fresh, scaled feature layer like the model's."""
    if task == "classification":
        dummy: Any = DummyClassifier(strategy="prior")
        linear: Any = LogisticRegression(max_iter=1000, random_state=seed)
    elif task == "regression":
        dummy, linear = DummyRegressor(strategy="mean"), Ridge(alpha=1.0)
    else:
        return {}  # an anomaly model has no labels to compare answers with
    out = {"dummy": Pipeline([("features", features()), ("model", dummy)]),
           "linear": Pipeline([("features", features()), ("model", linear)])}
    for pipe in out.values():
        with warnings.catch_warnings():
            # a baseline that stops short of convergence is still the simple model it stands for
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(X, y)
    return out
