"""The estimator registry: names a config may use, the sklearn class per task, and what each needs.

One table. ``needs_scaling``: linear models and networks are fitted on standardised
features; trees never are (a float64 scaler in front of a float32 tree flips
branches, DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils._param_validation import InvalidParameterError

from skedge.runtime._errors import ConfigError

if TYPE_CHECKING:
    from .config import Config

__all__ = ["Entry", "REGISTRY", "make_estimator", "check_model_config", "names_for"]


@dataclass(frozen=True)
class Entry:
    by_task: dict[str, type]
    needs_scaling: bool
    defaults: dict[str, Any]


REGISTRY: dict[str, Entry] = {
    "logistic_regression": Entry({"classification": LogisticRegression}, True, {"max_iter": 1000}),
    "linear_regression": Entry({"regression": LinearRegression}, True, {}),
    "ridge": Entry({"regression": Ridge}, True, {}),
    "lasso": Entry({"regression": Lasso}, True, {}),
    "decision_tree": Entry({"classification": DecisionTreeClassifier, "regression": DecisionTreeRegressor},
                           False, {}),
    "random_forest": Entry({"classification": RandomForestClassifier, "regression": RandomForestRegressor},
                           False, {"n_estimators": 100}),
    "extra_trees": Entry({"classification": ExtraTreesClassifier, "regression": ExtraTreesRegressor}, False,
                         {"n_estimators": 100}),
    "gradient_boosting": Entry({"classification": GradientBoostingClassifier,
                                "regression": GradientBoostingRegressor}, False, {}),
    "hist_gradient_boosting": Entry({"classification": HistGradientBoostingClassifier,
                                     "regression": HistGradientBoostingRegressor}, False, {}),
    "mlp": Entry({"classification": MLPClassifier, "regression": MLPRegressor}, True, {"max_iter": 2000}),
    "isolation_forest": Entry({"anomaly": IsolationForest}, False, {"n_estimators": 100}),
}


def names_for(task: str) -> list[str]:
    return sorted(n for n, e in REGISTRY.items() if task in e.by_task)


def _resolve(name: str, task: str, source: str) -> tuple[Entry, type]:
    if name not in REGISTRY:
        raise ConfigError(f"{source}: model.estimator = {name!r} is not in the registry; expected one of "
                          f"{', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    if task not in entry.by_task:
        raise ConfigError(f"{source}: model.estimator = {name!r} does not do {task}; for {task} use one of "
                          f"{', '.join(names_for(task))}")
    return entry, entry.by_task[task]


def make_estimator(name: str, task: str, params: dict[str, Any], seed: int, source: str = "config") -> Any:
    entry, cls = _resolve(name, task, source)
    est = cls()
    allowed = est.get_params()
    for key in params:
        if key not in allowed:
            raise ConfigError(f"{source}: model.params.{key} is not a parameter of {cls.__name__}; allowed: "
                              f"{', '.join(sorted(allowed))}")
    merged = {**entry.defaults, **params}
    if "random_state" in allowed and "random_state" not in params:
        merged["random_state"] = seed  # reproducible: same config and data, same model bytes
    est.set_params(**merged)
    try:
        est._validate_params()
    except InvalidParameterError as exc:
        raise ConfigError(f"{source}: model.params: {exc}") from None
    return est


def check_model_config(cfg: Config, source: str) -> None:
    """Fail at load time, before any data is read, on an estimator or parameter the registry refuses."""
    task = cfg.model.task
    if task is None:
        task = "anomaly" if cfg.data.target is None else None
    if task == "anomaly" and cfg.data.target is not None:
        raise ConfigError(f"{source}: model.task = 'anomaly' takes no data.target")
    if task is not None:
        make_estimator(cfg.model.estimator, task, cfg.model.params, cfg.seed, source)
        return
    # classification or regression is decided by the target column, read later: the parameters must
    # suit at least one of the tasks the estimator does
    if cfg.model.estimator not in REGISTRY:
        _resolve(cfg.model.estimator, "classification", source)
    tasks = [t for t in ("classification", "regression") if t in REGISTRY[cfg.model.estimator].by_task]
    if not tasks:
        raise ConfigError(f"{source}: model.estimator = {cfg.model.estimator!r} does anomaly detection, "
                          "which takes no data.target")
    errors = []
    for t in tasks:
        try:
            make_estimator(cfg.model.estimator, t, cfg.model.params, cfg.seed, source)
            return
        except ConfigError as exc:
            errors.append(exc)
    raise errors[0]
