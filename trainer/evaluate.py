"""The evaluation layer: holdout metrics, quality gates, and plots a person would rather look at."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from sklearn import metrics as skm

from skedge.runtime._errors import ConfigError, GateError

__all__ = ["evaluate", "check_gates", "describe_gates", "plots", "LOWER_IS_BETTER", "METRICS", "METRIC_RANGES"]

LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "contamination_gap"})
# the values a gate can sensibly name, per metric (a gate outside them is a typo, caught at config load)
METRIC_RANGES = {
    "accuracy": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0), "f1_macro": (0.0, 1.0),
    "log_loss": (0.0, float("inf")), "mae": (0.0, float("inf")), "rmse": (0.0, float("inf")),
    "r2": (float("-inf"), 1.0), "contamination_observed": (0.0, 1.0), "contamination_gap": (0.0, 1.0),
}
METRICS = {
    "classification": ("accuracy", "balanced_accuracy", "log_loss", "f1_macro"),
    "regression": ("mae", "rmse", "r2"),
    "anomaly": ("contamination_observed", "contamination_gap"),
}


def evaluate(task: str, pipeline: Any, X: Any, y: Any) -> dict[str, Any]:
    if task == "classification":
        pred = pipeline.predict(X)
        proba = pipeline.predict_proba(X)
        out: dict[str, Any] = {
            "accuracy": float(skm.accuracy_score(y, pred)),
            "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
            "log_loss": float(skm.log_loss(y, proba, labels=pipeline.classes_)),
            "f1_macro": float(skm.f1_score(y, pred, average="macro")),
        }
        report = skm.classification_report(y, pred, output_dict=True, zero_division=0)
        out["per_class"] = {str(c): {k: float(v) for k, v in report[str(c)].items()}
                            for c in pipeline.classes_ if str(c) in report}
        return out
    if task == "regression":
        pred = pipeline.predict(X)
        return {
            "mae": float(skm.mean_absolute_error(y, pred)),
            "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
            "r2": float(skm.r2_score(y, pred)),
        }
    pred = pipeline.predict(X)
    observed = float(np.mean(np.asarray(pred) == -1))
    est = pipeline.steps[-1][1]
    expected = est.contamination if isinstance(est.contamination, float) else observed
    return {"contamination_observed": observed, "contamination_gap": abs(observed - float(expected))}


def check_gates(task: str, metrics: dict[str, Any], gates: dict[str, float]) -> None:
    for name, bound in gates.items():
        if name not in METRICS[task]:
            raise ConfigError(f"evaluation.gates.{name}: not a metric of {task}; expected one of "
                              f"{', '.join(METRICS[task])}")
        value = metrics[name]
        if name in LOWER_IS_BETTER and value > bound:
            raise GateError(f"quality gate failed: {name} = {value:.4f} is above the maximum {bound}; "
                            "no bundle was written")
        if name not in LOWER_IS_BETTER and value < bound:
            raise GateError(f"quality gate failed: {name} = {value:.4f} is below the minimum {bound}; "
                            "no bundle was written")


def describe_gates(gates: dict[str, float]) -> dict[str, dict[str, float]]:
    """Gates as the manifest records them: ``{"accuracy": {"min": 0.95}, "rmse": {"max": 300.0}}``."""
    return {k: ({"max": v} if k in LOWER_IS_BETTER else {"min": v}) for k, v in gates.items()}


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def plots(task: str, pipeline: Any, X: Any, y: Any) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if task == "classification":
        classes = list(pipeline.classes_)
        cm = skm.confusion_matrix(y, pipeline.predict(X), labels=classes)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(classes)), [str(c) for c in classes], rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), [str(c) for c in classes])
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title("confusion matrix (holdout)")
        return {"confusion_matrix.png": _png(fig)}
    if task == "regression":
        pred = np.asarray(pipeline.predict(X))
        actual = np.asarray(y, dtype=np.float64)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.8))
        a1.scatter(actual, pred, s=10, alpha=0.7)
        lo, hi = float(min(actual.min(), pred.min())), float(max(actual.max(), pred.max()))
        a1.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        a1.set_xlabel("actual")
        a1.set_ylabel("predicted")
        a1.set_title("predicted vs actual (holdout)")
        a2.scatter(pred, actual - pred, s=10, alpha=0.7)
        a2.axhline(0, color="grey", lw=0.8)
        a2.set_xlabel("predicted")
        a2.set_ylabel("residual")
        a2.set_title("residuals")
        return {"predicted_vs_actual.png": _png(fig)}
    scores = np.asarray(pipeline.decision_function(X))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(scores, bins=30)
    ax.axvline(0, color="red", lw=1)
    ax.set_xlabel("decision score (negative: outlier)")
    ax.set_title("anomaly scores (holdout)")
    return {"scores.png": _png(fig)}
