"""The gate against the previous version: candidate and current holder scored on the same labelled rows,
both through the exported runtime (never Python objects), with a paired bootstrap of the difference.

Rules (issue 13): the candidate is refused when its main metric (accuracy for classification, r2 for
regression, the anomaly rate gap for anomaly models) drops by more than 0.01, or when the 95 % interval of
the paired difference lies wholly below zero. ``max_drop={"metric": v}`` sets the allowed drop of any
reported metric; for the main metric it replaces the default rule by: drop > v, or the interval wholly
below -v.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skedge.runtime import MISSING_TEXT, DataError, GateError, Model
from skedge.runtime._batch import feature_columns
from skedge.runtime._files import file_format, iter_chunks

__all__ = ["MetricDiff", "GateReport", "compare", "check_benchmark", "check_labels", "DEFAULT_MAX_DROP", "MAIN_METRIC",
           "MIN_ROWS", "file_sha256", "target_column"]

DEFAULT_MAX_DROP = 0.01
MAIN_METRIC = {"classification": "accuracy", "regression": "r2", "anomaly": "anomaly_rate_gap"}
# metrics where a smaller value is better: their "drop" is an increase
_LOWER_IS_BETTER = frozenset({"mae", "rmse", "anomaly_rate_gap"})
BOOTSTRAP = 1000


@dataclass(frozen=True)
class MetricDiff:
    name: str
    candidate: float
    current: float
    diff: float  # candidate - current, signed so that positive is better
    low: float  # 95 % paired bootstrap interval of ``diff``
    high: float


@dataclass(frozen=True)
class GateReport:
    task: str
    rows: int
    data_sha256: str
    candidate: str
    current: str
    main: str
    metrics: tuple[MetricDiff, ...]
    flip_rate: float | None  # share of rows whose label changed (classification, anomaly)
    worse_rows: int  # rows the current holder got right and the candidate wrong (regression: larger error)
    rules: Mapping[str, float]
    passed: bool
    refusal: str | None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = [asdict(m) for m in self.metrics]
        d["rules"] = dict(self.rules)
        return d

    def lines(self) -> list[str]:
        out = [f"gate: {self.candidate} vs {self.current} on {self.rows} rows (data {self.data_sha256[:12]}…): "
               + ("pass" if self.passed else f"REFUSED — {self.refusal}")]
        for m in self.metrics:
            out.append(f"  {m.name:<18} candidate {m.candidate:.4f}  current {m.current:.4f}  "
                       f"difference {m.diff:+.4f} [{m.low:+.4f}, {m.high:+.4f}]")
        if self.flip_rate is not None:
            out.append(f"  flip rate {self.flip_rate:.2%}")
        out.append(f"  rows that got worse: {self.worse_rows}")
        return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _columns(path: Path) -> list[str]:
    fmt = file_format(path)
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh), [])
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as fh:
            first = next((ln for ln in fh if ln.strip()), "{}")
        row = json.loads(first)
        return list(row) if isinstance(row, dict) else []
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def target_column(model: Model, path: Path, given: str | None = None) -> str | None:
    """The labelled data's target: given, else the manifest's, else the one column the model does not take."""
    manifest = model.bundle.manifest if model.bundle else {}
    if model.schema.task == "anomaly":  # scored without labels: the rate against the one the manifest states
        return None
    name = given or manifest.get("target")
    cols = _columns(path)
    if name:
        if name not in cols:
            raise DataError(f"{path}: the target column {name!r} is not in the file (columns: {', '.join(cols)})")
        return str(name)
    extra = [c for c in cols if c not in {f.name for f in model.schema.features}]
    if len(extra) == 1:
        return extra[0]
    raise DataError(f"{path}: cannot tell which column is the target ({', '.join(extra) or 'none'} besides the "
                    "model's fields): give --target COLUMN")


def _score(model: Model, path: Path, target: str | None) -> tuple[dict[str, np.ndarray], list[Any]]:
    outs: dict[str, list[np.ndarray]] = {}
    ys: list[Any] = []
    keep = (target,) if target else ()
    for chunk in iter_chunks(path, model.schema, keep=keep):
        if chunk.n == 0:
            continue
        # a Parquet chunk is pyarrow arrays, which predict's row reader does not take: read as the batch scorer does
        for k, v in model.predict_outputs(feature_columns(chunk.features, model.schema)).items():
            outs.setdefault(k, []).append(np.asarray(v))
        if target:
            col = chunk.carried[target]
            ys.extend(col.to_pylist() if hasattr(col, "to_pylist") else col)  # pyarrow scalars are no labels
    if not outs:
        raise DataError(f"{path} has no rows: the gate needs labelled rows")
    return {k: np.concatenate(v) for k, v in outs.items()}, ys


# fewer labelled rows than this and the paired interval says nothing: three rows "passed" a stump over a forest
MIN_ROWS = 30


def check_labels(model: Model, ys: list[Any], path: Path) -> None:
    """A benchmark a gate can read: enough labelled rows, and (classifiers) labels the model can answer.
    Labels spelled otherwise (``YES`` for ``yes``) would score both models 0 and pass any candidate."""
    if len(ys) < MIN_ROWS:
        raise DataError(f"{path}: {len(ys)} labelled rows are too few for the gate (at least {MIN_ROWS}): "
                        "give a larger --data file")
    if model.schema.task == "classification" and model.schema.classes is not None:
        known = {str(c) for c in model.schema.classes}
        foreign = sorted({str(y) for y in ys} - known)
        if foreign:
            shown = ", ".join(repr(v) for v in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise DataError(f"{path}: the target column holds labels the model never answers: {shown} (its classes: "
                            f"{', '.join(sorted(known))}): check the column and its spelling")


def check_benchmark(model: Model, path: Path, target: str | None = None) -> None:
    """What ``compare`` checks of the data, for a first holder (nothing to compare with yet)."""
    col = target_column(model, path, target)
    if col is None:
        return
    _, ys = _score(model, path, col)
    check_labels(model, [y for y in ys if not _missing(y)], path)


def _missing(value: Any) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return True
    return isinstance(value, str) and value in MISSING_TEXT


def _blocks(n: int, seed: int) -> Any:
    """The bootstrap's resamples, ``BOOTSTRAP`` rows of ``n`` indices, in blocks of at most ~2 M indices;
    the same seed gives every metric (and both models) the same resamples: the difference is paired."""
    rng = np.random.default_rng(seed)
    step = max(1, min(BOOTSTRAP, 2_000_000 // max(n, 1)))
    done = 0
    while done < BOOTSTRAP:
        b = min(step, BOOTSTRAP - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


# A statistic maps a (resamples, rows) index array to one value per resample.
def _metric(name: str, cand: Any, cur: Any, n: int, seed: int) -> MetricDiff:
    sign = -1.0 if name in _LOWER_IS_BETTER else 1.0
    every = np.arange(n)[None, :]
    c, k = float(cand(every)[0]), float(cur(every)[0])
    diffs = np.concatenate([sign * (cand(i) - cur(i)) for i in _blocks(n, seed)])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return MetricDiff(name, c, k, sign * (c - k), float(lo), float(hi))


def _classification(oc: dict[str, np.ndarray], ok: dict[str, np.ndarray], ys: list[Any], n: int,
                    seed: int) -> tuple[list[MetricDiff], float, int]:
    y = np.array([str(v) for v in ys], dtype=object)
    lc = np.array([str(v) for v in oc["label"]], dtype=object)
    lk = np.array([str(v) for v in ok["label"]], dtype=object)
    rc, rk = (lc == y).astype(float), (lk == y).astype(float)
    classes, yint = np.unique(y.astype(str), return_inverse=True)

    def accuracy(r: np.ndarray) -> Any:
        return lambda i: r[i].mean(axis=1)

    def balanced(r: np.ndarray) -> Any:  # sklearn's balanced_accuracy: mean recall over the classes present
        def f(i: np.ndarray) -> np.ndarray:
            yi, ri = yint[i], r[i]
            recalls = []
            for c in range(len(classes)):
                tot = (yi == c).sum(axis=1)
                recalls.append(np.where(tot > 0, ((yi == c) * ri).sum(axis=1) / np.maximum(tot, 1), np.nan))
            return np.nanmean(np.stack(recalls), axis=0)
        return f

    metrics = [_metric("accuracy", accuracy(rc), accuracy(rk), n, seed)]
    if len(classes) > 1:
        metrics.append(_metric("balanced_accuracy", balanced(rc), balanced(rk), n, seed))
    return metrics, float(np.mean(lc != lk)), int(np.sum((rk == 1) & (rc == 0)))


def _regression(oc: dict[str, np.ndarray], ok: dict[str, np.ndarray], ys: list[Any], path: Path, n: int,
                seed: int) -> tuple[list[MetricDiff], None, int]:
    try:
        y = np.array([float(v) for v in ys])
    except (TypeError, ValueError):
        raise DataError(f"{path}: the target column holds a value that is not a number") from None
    ec, ek = np.asarray(oc["value"], float) - y, np.asarray(ok["value"], float) - y

    def r2(e: np.ndarray) -> Any:
        def f(i: np.ndarray) -> np.ndarray:
            yi = y[i]
            ss = ((yi - yi.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            return np.where(ss > 0, 1.0 - (e[i] ** 2).sum(axis=1) / np.where(ss > 0, ss, 1.0), 0.0)
        return f

    def mae(e: np.ndarray) -> Any:
        return lambda i: np.abs(e[i]).mean(axis=1)

    def rmse(e: np.ndarray) -> Any:
        return lambda i: np.sqrt((e[i] ** 2).mean(axis=1))

    metrics = [_metric("r2", r2(ec), r2(ek), n, seed), _metric("mae", mae(ec), mae(ek), n, seed),
               _metric("rmse", rmse(ec), rmse(ek), n, seed)]
    return metrics, None, int(np.sum(np.abs(ec) > np.abs(ek)))


def _anomaly(model_c: Model, model_k: Model, oc: dict[str, np.ndarray], ok: dict[str, np.ndarray], n: int,
             seed: int) -> tuple[list[MetricDiff], float, int]:
    """The gap between the outlier rate on the benchmark and the rate each model's manifest states."""
    def expected(m: Model) -> float:
        metrics = m.bundle.manifest.get("metrics", {}) if m.bundle else {}
        return float(metrics.get("contamination_observed", 0.0))

    def gap(flags: np.ndarray, rate: float) -> Any:
        return lambda i: np.abs(flags[i].mean(axis=1) - rate)

    fc, fk = (np.asarray(oc["label"]) == -1).astype(float), (np.asarray(ok["label"]) == -1).astype(float)
    metrics = [_metric("anomaly_rate_gap", gap(fc, expected(model_c)), gap(fk, expected(model_k)), n, seed)]
    return metrics, float(np.mean(fc != fk)), int(np.sum(fc != fk))


def compare(candidate: Model, current: Model, data: str | Path, *, target: str | None = None,
            max_drop: Mapping[str, float] | None = None, seed: int = 0) -> GateReport:
    """Score both on ``data`` and apply the rules; the report says whether the candidate may take over."""
    path = Path(data)
    task = candidate.schema.task
    if current.schema.task != task:
        raise GateError(f"the candidate does {task}, the current holder {current.schema.task}: not comparable")
    col = target_column(candidate, path, target)
    oc, ys = _score(candidate, path, col)
    ok, ys_k = _score(current, path, target_column(current, path, col))
    if len(ys) != len(ys_k):
        raise DataError(f"{path}: the two models read a different number of rows")
    if col is not None:  # a row without its label is not labelled data (as training leaves it out)
        keep = np.array([not _missing(y) for y in ys], dtype=bool)
        oc, ok = {k: v[keep] for k, v in oc.items()}, {k: v[keep] for k, v in ok.items()}
        ys = [y for y, kept in zip(ys, keep, strict=True) if kept]
    n = len(next(iter(oc.values())))
    if n == 0:
        raise DataError(f"{path}: no row has a value in the target column {col!r}")
    if col is not None:
        check_labels(candidate, ys, path)
    flip: float | None
    if task == "classification":
        metrics, flip, worse = _classification(oc, ok, ys, n, seed)
    elif task == "regression":
        metrics, flip, worse = _regression(oc, ok, ys, path, n, seed)
    else:
        metrics, flip, worse = _anomaly(candidate, current, oc, ok, n, seed)
    main = MAIN_METRIC[task]
    rules = {main: DEFAULT_MAX_DROP, **dict(max_drop or {})}
    known = {m.name for m in metrics}
    for k, v in rules.items():
        if not 0.0 <= v < float("inf"):
            raise GateError(f"--max-drop {k}={v:g}: a drop is a finite number, 0 or more")
    for k in rules:
        if k not in known:
            raise GateError(f"--max-drop names {k!r}, which the gate does not measure for {task} "
                            f"(it measures {', '.join(sorted(known))})")
    refusal = None
    for m in metrics:
        if m.name not in rules:
            continue
        limit = rules[m.name]
        explicit = max_drop is not None and m.name in max_drop
        floor = -limit if explicit else 0.0
        rule = f"at most {limit:g} drop" + (f" and interval not wholly below {floor:g}" if explicit
                                             else " and interval not wholly below 0")
        if -m.diff > limit or m.high < floor:
            refusal = (f"{m.name} {m.candidate:.4f} (candidate) vs {m.current:.4f} (current), difference "
                       f"{m.diff:+.4f}, 95 % interval [{m.low:+.4f}, {m.high:+.4f}]; rule: {rule}")
            break
    return GateReport(task=task, rows=n, data_sha256=file_sha256(path),
                      candidate=f"{candidate.name}@{candidate.version}", current=f"{current.name}@{current.version}",
                      main=main, metrics=tuple(metrics), flip_rate=flip, worse_rows=worse, rules=rules,
                      passed=refusal is None, refusal=refusal)
