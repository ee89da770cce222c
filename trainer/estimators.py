"""The estimator registry: names a config may use, the sklearn class per task, and what each needs.

One table. ``needs_scaling``: linear models and networks are fitted on standardised
features; trees never are (a float64 scaler in front of a float32 tree flips
branches, DESIGN.md).
"""

from __future__ import annotations

import math
import os
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

__all__ = ["Entry", "REGISTRY", "make_estimator", "check_model_config", "names_for", "mlp_memory_bytes",
           "check_mlp_memory"]


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


# sklearn's tree builders and loops keep sizes in C ints: a larger whole number passes sklearn's own
# parameter check (it only asks for an Integral) and then fails deep inside with OverflowError
INT_PARAM_RANGE = (-(2**31), 2**31 - 1)
# numpy seeds are unsigned 32-bit
_PARAM_RANGES = {"random_state": (0, 2**32 - 1)}


def _check_param_value(key: str, value: Any, source: str) -> None:
    """Whole numbers within C int range, no inf/nan: what sklearn's validation lets through but cannot run."""
    lo, hi = _PARAM_RANGES.get(key, INT_PARAM_RANGE)
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, bool):
            continue
        if isinstance(v, int) and not lo <= v <= hi:
            shown = f"{v:.3e}" if abs(v) < 10**300 else "a number of more than 300 digits"
            raise ConfigError(f"{source}: model.params.{key} = {shown} is out of range; whole-number parameters "
                              f"must lie in [{lo}, {hi}]")
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{source}: model.params.{key} = {v}: parameters must be finite numbers")
        if isinstance(v, list | tuple):
            todo.extend(v)
        elif isinstance(v, dict):
            todo.extend(v.values())


def mlp_memory_bytes(hidden: Any, n_in: int, n_out: int, *, rows: int, solver: str, batch_size: Any) -> int:
    """A lower estimate of what fitting an MLP allocates: weights, gradients, the solver's copies, activations."""
    sizes = [int(n_in), *_layers(hidden), int(n_out)]
    weights = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    # adam keeps two moment copies and sgd a velocity, beside the gradient; L-BFGS keeps maxcor (10) pairs
    copies = 22 if solver == "lbfgs" else 4
    if solver == "lbfgs":
        batch = rows  # full batch
    else:
        batch = min(200, rows) if batch_size == "auto" else min(int(batch_size), rows)
    activations = 2 * batch * sum(sizes)  # forward values and backward deltas
    return 8 * (weights * copies + activations)


def _memory_limit() -> int:
    """Bytes of memory this process may reasonably take: what the system reports available, else all of it."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not a POSIX system
        return 2**62


def check_mlp_memory(est: Any, n_in: int, n_out: int, rows: int, source: str) -> None:
    """Refuse before fitting an MLP whose weights alone would not fit in memory (it would swap, then be killed)."""
    if not hasattr(est, "hidden_layer_sizes"):
        return
    need = mlp_memory_bytes(est.hidden_layer_sizes, n_in, n_out, rows=rows, solver=est.solver,
                            batch_size=est.batch_size)
    limit = _memory_limit()
    if need > limit:
        on = "even on the smallest table" if rows == 1 else f"on {rows:,} rows, {n_in:,} inputs, {n_out:,} outputs"
        raise ConfigError(f"{source}: model.params.hidden_layer_sizes = {list(_layers(est.hidden_layer_sizes))} "
                          f"needs at least {_size(need)} to fit {on} (solver {est.solver!r}); {_size(limit)} are "
                          "available. Use fewer or smaller layers" + (", or fewer inputs (a category of many levels "
                                                                      "is one input per level)" if n_in > 1000 else ""))


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} bytes"


def _layers(hidden: Any) -> tuple[int, ...]:
    return tuple(int(h) for h in (hidden if isinstance(hidden, list | tuple) else [hidden]))


def make_estimator(name: str, task: str, params: dict[str, Any], seed: int, source: str = "config") -> Any:
    entry, cls = _resolve(name, task, source)
    est = cls()
    allowed = est.get_params()
    for key in params:
        if key not in allowed:
            raise ConfigError(f"{source}: model.params.{key} is not a parameter of {cls.__name__}; allowed: "
                              f"{', '.join(sorted(allowed))}")
        _check_param_value(key, params[key], source)
    merged = {**entry.defaults, **params}
    if "random_state" in allowed and "random_state" not in params:
        merged["random_state"] = seed  # reproducible: same config and data, same model bytes
    est.set_params(**merged)
    try:
        est._validate_params()
    except InvalidParameterError as exc:
        text = str(exc)  # sklearn echoes the value: a 100,000-element list would make a 600 KB message
        raise ConfigError(f"{source}: model.params: {text if len(text) <= 500 else text[:499] + '…'}") from None
    # the smallest table it could be fitted on (one input, one output, one row): a network that cannot fit
    # even then is refused before any data is read; fit() checks again with the real widths
    check_mlp_memory(est, 1, 1, 1, source)
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
