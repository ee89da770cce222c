"""The evaluation layer: holdout metrics with intervals, baselines, slices, quality gates, and plots.

The metrics themselves live in ``metrics`` (one vectorised implementation for the value and its bootstrap),
the resampling in ``intervals``, the comparison models in ``baselines``, the slices in ``slices``; this module
puts them together into one ``Evaluation`` the manifest and card are written from, and applies the gates.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

from skedge.runtime._errors import ConfigError, GateError

from .baselines import BASELINE_RULE, BASELINES, describe
from .intervals import Bootstrap, interval, point, resampled
from .metrics import LOWER_IS_BETTER, MAIN_METRIC, METRIC_RANGES, METRICS, answers_for
from .slices import Slice, evaluate_slices

__all__ = ["evaluate", "evaluate_all", "Evaluation", "check_gates", "check_slice_gates", "describe_gates",
           "gate_names", "plots", "GAIN_SUFFIXES", "GATE_ON", "LOWER_IS_BETTER", "METRICS", "METRIC_RANGES",
           "MAIN_METRIC"]

# ``<metric>_gain_over_<which>``: the model's metric minus the baseline's, signed so that positive is better
# (for an error metric, the baseline's error minus the model's); "baseline" is BASELINE_RULE
GAIN_SUFFIXES = tuple(f"_gain_over_{b}" for b in (*BASELINES, "baseline"))
# what a gate compares with its bound: the holdout value, or the worse end of its 95 % interval
GATE_ON = ("value", "interval")


def gate_names(task: str | None = None, *, gains: bool = True) -> dict[str, tuple[float, float]]:
    """Every name a gate may take (of one task, or of any), with the range its bound must lie in."""
    names = [m for t, ms in METRICS.items() if task in (None, t) for m in ms]
    out = {m: METRIC_RANGES[m] for m in names}
    if gains:
        for m in names:
            lo, hi = METRIC_RANGES[m]
            width = hi - lo  # a gain cannot exceed the metric's whole range (inf for an unbounded one)
            for suffix in GAIN_SUFFIXES:
                out[m + suffix] = (-width, width)
    return out


def _split_gain(name: str) -> tuple[str, str] | None:
    for suffix in GAIN_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix[len("_gain_over_"):]
    return None


def _finite(d: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in d.items() if np.isfinite(v)}


def evaluate(task: str, pipeline: Any, X: Any, y: Any) -> dict[str, Any]:
    """The holdout value of every metric of ``task`` (undefined ones, a ROC-AUC with one class, left out)."""
    classes = tuple(str(c) for c in getattr(pipeline, "classes_", ()))
    out: dict[str, Any] = _finite(point(answers_for(task, pipeline, X, y, classes)))
    if task == "classification":
        pred = pipeline.predict(X)
        report = skm.classification_report(y, pred, output_dict=True, zero_division=0)
        out["per_class"] = {str(c): {k: float(v) for k, v in report[str(c)].items()}
                            for c in pipeline.classes_ if str(c) in report}
    return out


@dataclass(frozen=True)
class Evaluation:
    """What the evaluation found: the manifest's ``evaluation`` block, the gates' inputs, the card's tables."""

    task: str
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float] | None]
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    gains: dict[str, dict[str, Any]] = field(default_factory=dict)
    slices: dict[str, Any] = field(default_factory=dict)
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    slice_min_rows: int = 30
    gate_on: str = "value"
    slice_gates: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bootstrap": self.bootstrap.to_json(), "gate_on": self.gate_on,
            "lower_is_better": sorted(m for m in METRICS[self.task] if m in LOWER_IS_BETTER),
            "intervals": {k: list(v) if v else None for k, v in self.intervals.items()},
        }
        if self.baselines:
            out["baselines"] = self.baselines
            out["baseline_rule"] = BASELINE_RULE
            out["gains"] = self.gains
        if self.slices:
            out["slices"] = {"min_rows": self.slice_min_rows, "gates": describe_gates(self.slice_gates),
                             "columns": self.slices}
        return out


def _interval_json(values: np.ndarray, level: float) -> list[float] | None:
    iv = interval(values, level)
    return list(iv) if iv else None


def evaluate_all(task: str, pipeline: Any, X: Any, y: Any, *, baselines: dict[str, Any] | None = None,
                 slices: dict[str, list[Slice]] | None = None, bootstrap: Bootstrap | None = None,
                 slice_min_rows: int = 30, gate_on: str = "value", slice_gates: dict[str, float] | None = None
                 ) -> Evaluation:
    """Model, baselines and slices scored on one holdout, every metric with its bootstrap interval."""
    boot = bootstrap or Bootstrap()
    classes = tuple(str(c) for c in getattr(pipeline, "classes_", ()))
    answers = {"model": answers_for(task, pipeline, X, y, classes)}
    for who, base in (baselines or {}).items():
        answers[who] = answers_for(task, base, X, y, classes)
    values = {who: point(a) for who, a in answers.items()}
    draws = resampled(answers, boot)
    model = values["model"]
    intervals = {k: interval(v, boot.level) for k, v in draws["model"].items()}
    base_json: dict[str, dict[str, Any]] = {}
    gains: dict[str, dict[str, Any]] = {}
    what = describe(task)
    for who in baselines or {}:
        base_json[who] = {"model": what[who], "metrics": _finite(values[who]),
                          "intervals": {k: _interval_json(v, boot.level) for k, v in draws[who].items()}}
    if baselines:
        for m in METRICS[task]:
            sign = -1.0 if m in LOWER_IS_BETTER else 1.0
            defined = [b for b in baselines if np.isfinite(values[b][m])]
            best = max(defined, key=lambda b: sign * values[b][m]) if defined else None
            for b in (*baselines, "baseline"):
                ref = best if b == "baseline" else b
                if ref is None or not np.isfinite(values[ref][m]) or not np.isfinite(model[m]):
                    continue
                diff = sign * (draws["model"][m] - draws[ref][m])
                gains[f"{m}_gain_over_{b}"] = {"value": sign * (model[m] - values[ref][m]), "baseline": ref,
                                               "interval": _interval_json(diff, boot.level)}
    table = evaluate_slices(answers["model"], slices, boot, slice_min_rows) if slices else {}
    return Evaluation(task, _finite(model), {k: v for k, v in intervals.items() if k in _finite(model)},
                      base_json, gains, table, boot, slice_min_rows, gate_on, dict(slice_gates or {}))


def _gated_value(name: str, value: float, iv: Any, gate_on: str) -> tuple[float, str]:
    if gate_on != "interval":
        return value, f"{name} = {value:.4f}"
    if iv is None:
        raise GateError(f"quality gate on the interval of {name}: it has no interval (too few rows to resample); "
                        "no bundle was written")
    lower_better = name in LOWER_IS_BETTER and _split_gain(name) is None
    end = float(iv[1] if lower_better else iv[0])
    return end, f"{name} = {value:.4f} (95 % interval [{iv[0]:.4f}, {iv[1]:.4f}], gated on its " \
                f"{'upper' if lower_better else 'lower'} end {end:.4f})"


def _check_one(name: str, shown: str, value: float, bound: float, where: str) -> None:
    if name in LOWER_IS_BETTER and _split_gain(name) is None and value > bound:
        raise GateError(f"quality gate failed{where}: {shown} is above the maximum {bound}; no bundle was written")
    if (name not in LOWER_IS_BETTER or _split_gain(name) is not None) and value < bound:
        raise GateError(f"quality gate failed{where}: {shown} is below the minimum {bound}; no bundle was written")


def check_gates(task: str, metrics: dict[str, Any], gates: dict[str, float],
                evaluation: Evaluation | None = None) -> None:
    """Refuse the model (GateError) when a gate is not met; a gate ``task`` has no such metric is a ConfigError."""
    allowed = gate_names(task, gains=evaluation is not None and bool(evaluation.baselines))
    gate_on = evaluation.gate_on if evaluation else "value"
    for name, bound in gates.items():
        if name not in allowed:
            raise ConfigError(f"evaluation.gates.{name}: not a metric of {task}; expected one of "
                              f"{', '.join(METRICS[task])}, or <metric>_gain_over_dummy / _linear / _baseline")
        if _split_gain(name):
            assert evaluation is not None
            gain = evaluation.gains.get(name)
            if gain is None:
                raise GateError(f"quality gate on {name}: undefined on this holdout; no bundle was written")
            value, iv = float(gain["value"]), gain["interval"]
            gated, shown = _gated_value(name, value, iv, gate_on)
            _check_one(name, shown + f" (over the {gain['baseline']} baseline)", gated, bound, "")
            continue
        if name not in metrics:
            raise GateError(f"quality gate on {name}: undefined on this holdout (e.g. a class missing from it); "
                            "no bundle was written")
        iv = evaluation.intervals.get(name) if evaluation else None
        gated, shown = _gated_value(name, float(metrics[name]), iv, gate_on)
        _check_one(name, shown, gated, bound, "")


def check_slice_gates(evaluation: Evaluation, gates: dict[str, float]) -> None:
    """Each gate on every slice with at least ``slice_min_rows`` rows; smaller slices are reported only."""
    for name in gates:
        if name not in METRICS[evaluation.task]:
            raise ConfigError(f"evaluation.slice_gates.{name}: not a metric of {evaluation.task}; expected one of "
                              f"{', '.join(METRICS[evaluation.task])}")
    for column, info in evaluation.slices.items():
        for s in info["slices"]:
            if not s["gated"]:
                continue
            for name, bound in gates.items():
                value = s["metrics"].get(name)
                if value is None:
                    continue  # undefined in this slice (a ROC-AUC of one class): nothing to hold it to
                gated, shown = _gated_value(name, value, s["intervals"].get(name), evaluation.gate_on)
                _check_one(name, shown, gated, bound, f" on the slice {column} = {s['slice']} ({s['rows']} rows)")


def describe_gates(gates: dict[str, float]) -> dict[str, dict[str, float]]:
    """Gates as the manifest records them: ``{"accuracy": {"min": 0.95}, "rmse": {"max": 300.0}}``."""
    return {k: ({"max": v} if k in LOWER_IS_BETTER and _split_gain(k) is None else {"min": v})
            for k, v in gates.items()}


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def plots(task: str, pipeline: Any, X: Any, y: Any, evaluation: Evaluation | None = None) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import reliability_plot, slices_plot

    extra: dict[str, bytes] = {}
    if evaluation is not None and evaluation.slices:
        extra["slices.png"] = _png(slices_plot(evaluation.slices, evaluation.task))
    if task == "classification":
        classes = list(pipeline.classes_)
        extra["reliability.png"] = _png(reliability_plot(np.asarray(y), np.asarray(pipeline.predict_proba(X)),
                                                         [str(c) for c in classes]))
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
        return {"confusion_matrix.png": _png(fig), **extra}
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
        return {"predicted_vs_actual.png": _png(fig), **extra}
    scores = np.asarray(pipeline.decision_function(X))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(scores, bins=30)
    ax.axvline(0, color="red", lw=1)
    ax.set_xlabel("decision score (negative: outlier)")
    ax.set_title("anomaly scores (holdout)")
    return {"scores.png": _png(fig), **extra}
