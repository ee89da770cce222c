"""The ``train`` flow: config -> data -> features -> fit -> evaluate -> gates -> export -> bundle."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from skedge.exporter._export import build
from skedge.exporter.bundle import bundle_path, write_bundle
from skedge.runtime._errors import ConfigError, DataError, ExportError, ParityError
from skedge.runtime._parity import ParityRow

from .baselines import fit_baselines
from .checks import check_split, check_target
from .config import Config, load_config
from .data import load_table, prepare, split
from .estimators import REGISTRY, check_mlp_memory, make_estimator
from .evaluate import Evaluation, check_gates, check_slice_gates, describe_gates, evaluate, evaluate_all, plots
from .features import build_preprocessor
from .intervals import Bootstrap
from .slices import Slice, slice_rows

__all__ = ["train", "fit", "TrainResult"]

Step = Callable[[str], AbstractContextManager[Any]]


@dataclass(frozen=True)
class TrainResult:
    path: Path
    metrics: dict[str, Any]
    parity: list[ParityRow]
    pipeline: Pipeline


# A numeric target with at most this many distinct whole values is taken as class labels (a 0/1 column
# that pandas read as float because of blank cells is still a label); set model.task to say otherwise.
MAX_INFERRED_CLASSES = 20


def _task(cfg: Config, y: pd.Series | None) -> str:
    if cfg.model.task:
        return cfg.model.task
    if y is None:
        return "anomaly"
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.to_numpy(dtype=np.float64)
    whole = bool(np.all(values == np.floor(values)))
    return "classification" if whole and y.nunique() <= MAX_INFERRED_CLASSES else "regression"


def _git_commit(where: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def fit(cfg: Config, step: Step = lambda _: nullcontext()) -> tuple[Pipeline, dict[str, Any]]:
    """Load, split, fit and evaluate; returns the pipeline and what export needs to know."""
    with step("load data"):
        frame = load_table(cfg.data_path(), text=[c for c, k in cfg.data.kinds.items() if k == "category"])
        source = str(cfg.data_path())
        ds = prepare(frame, target=cfg.data.target, drop=cfg.data.drop, kinds=dict(cfg.data.kinds),
                     source=source, high_cardinality_mode=cfg.features.high_cardinality,
                     max_levels=cfg.features.max_levels)
    task = _task(cfg, ds.y)
    check_target(ds.y, task, cfg.data.target, source)
    _slice_kinds(cfg, ds)
    if task == "classification" and ds.y is not None and pd.api.types.is_float_dtype(ds.y):
        ds = dataclasses.replace(ds, y=ds.y.astype(np.int64))  # labels 0/1, not 0.0/1.0
    est = make_estimator(cfg.model.estimator, task, cfg.model.params, cfg.seed)
    scale = {"auto": REGISTRY[cfg.model.estimator].needs_scaling, "always": True, "never": False}[cfg.features.scale]
    stratify = cfg.evaluation.stratify and task == "classification"
    n_classes = int(ds.y.nunique()) if task == "classification" and ds.y is not None else None
    check_split(len(ds.X), cfg.evaluation.holdout, n_classes=n_classes, source=source,
                stratified=stratify and ds.y is not None and int(ds.y.value_counts().min()) >= 2)
    X_tr, X_te, y_tr, y_te = split(ds, holdout=cfg.evaluation.holdout, seed=cfg.seed, stratify=stratify)
    # the network's real width: one input per number, one per category level (+1 for missing)
    width = sum(1 if f.kind != "category" else len(f.categories or ()) + 1 for f in ds.features)
    check_mlp_memory(est, width, n_classes or 1, len(X_tr), "config")
    pipe = Pipeline([("features", build_preprocessor(_schema_stub(ds), cfg.features, scale=scale)),
                     ("model", est)])
    with step(f"fit {type(est).__name__} on {len(X_tr)} rows"):
        pipe.fit(X_tr, y_tr) if y_tr is not None else pipe.fit(X_tr)
    with step("evaluate on the holdout"):
        if task == "classification":
            unseen = sorted(set(map(str, y_te)) - set(map(str, pipe.classes_)))
            if unseen:
                raise DataError(f"class {unseen[0]!r} of {cfg.data.target!r} appears only in the holdout: it has too "
                                f"few rows to learn from ({pipe.classes_.size} classes were). Remove its rows, "
                                "or if the target is a quantity set model.task = \"regression\"")
        metrics = evaluate(task, pipe, X_te, y_te)
    with step("baselines, intervals and slices"):
        evaluation = _evaluation(cfg, task, pipe, ds, (X_tr, y_tr, X_te, y_te))
        check_gates(task, metrics, cfg.evaluation.gates, evaluation)
        check_slice_gates(evaluation, dict(cfg.evaluation.slice_gates))
        reports = plots(task, pipe, X_te, y_te, evaluation)
    info = {"task": task, "features": ds.features, "holdout": X_te, "train": X_tr, "reports": reports,
            "evaluation": evaluation, "holdout_target": y_te,
            "data": {"path": cfg.data.path, "sha256": ds.sha256, "rows": ds.rows,
                     "rows_without_target": ds.dropped_rows, "train_rows": len(X_tr), "holdout_rows": len(X_te),
                     # what training chose not to learn from, so the manifest says it (only when there is any)
                     **({"left_out_columns": dict(ds.left_out)} if ds.left_out else {})}}
    return pipe, {"metrics": metrics, **info}


def _evaluation(cfg: Config, task: str, pipe: Pipeline, ds: Any, split_: tuple[Any, Any, Any, Any]) -> Evaluation:
    """Baselines fitted on the model's training rows, slices by the configured columns, all on one holdout."""
    X_tr, y_tr, X_te, y_te = split_
    ev = cfg.evaluation
    kinds = _slice_kinds(cfg, ds)
    slices: dict[str, list[Slice]] = {
        c: slice_rows(c, kinds[c], X_te[c].reset_index(drop=True), X_tr[c], ev.slice_bins) for c in ev.slices}
    baselines = fit_baselines(task, lambda: build_preprocessor(_schema_stub(ds), cfg.features, scale=True),
                              X_tr, y_tr, cfg.seed) if y_tr is not None else {}
    return evaluate_all(task, pipe, X_te, y_te, baselines=baselines, slices=slices,
                        bootstrap=Bootstrap(resamples=ev.bootstrap, seed=cfg.seed),
                        slice_min_rows=ev.slice_min_rows, gate_on=ev.gate_on, slice_gates=dict(ev.slice_gates))


def _slice_kinds(cfg: Config, ds: Any) -> dict[str, str]:
    kinds = {f.name: f.kind for f in ds.features}
    unknown = [c for c in cfg.evaluation.slices if c not in kinds]
    if unknown:  # asked before the fit, so a typo costs no training time
        raise ConfigError(f"evaluation.slices: {unknown[0]!r} is not a feature column; features: "
                          f"{', '.join(kinds)}")
    return kinds


def _schema_stub(ds: Any) -> Any:
    from skedge.runtime._schema import Schema

    return Schema(features=ds.features, task="regression")


def train(config: str | Path | Config, out: str | Path = "models", *, version: str | None = None,
          step: Step = lambda _: nullcontext()) -> TrainResult:
    """Train from a config file and write a verified bundle to ``out/<name>/<version>``."""
    cfg = config if isinstance(config, Config) else load_config(config)
    version = version or cfg.version
    target_dir = bundle_path(out, cfg.name, version)
    if target_dir.exists():  # refuse before spending minutes on a fit
        raise ExportError(f"{target_dir} already exists: a published version is never overwritten; "
                          "choose a new version (--version, or bump it in the config)")
    pipe, info = fit(cfg, step)
    metrics = info["metrics"]
    from skedge.runtime._schema import Schema

    schema = Schema(features=info["features"], task=info["task"])
    golden_sample = info["holdout"].reset_index(drop=True)
    with step("export and check parity (onnx, ort, coreml)"):
        exported = build(
            pipe, golden_sample, name=cfg.name, version=version, schema=schema, seed=cfg.seed,
            metrics={k: v for k, v in metrics.items() if isinstance(v, float)},
            gates=describe_gates(dict(cfg.evaluation.gates)), reports=info["reports"], description=cfg.description,
            # targets named in the config must all pass; by default an inexact optional one is left out
            targets=tuple(cfg.export.targets) if "targets" in cfg.export.model_fields_set else None,
            golden=cfg.export.golden, tolerance={"abs": cfg.export.tolerance, "rel": cfg.export.tolerance},
            reference=info["train"],  # profile.json's distributions come from the rows the model learnt from
            target=cfg.data.target, compare=dict(cfg.evaluation.compare), evaluation=info["evaluation"].to_json(),
            provenance={"config_sha256": cfg.sha256, "data": info["data"], "git_commit": _git_commit(cfg.base_dir),
                        "estimator_params": {k: repr(v) for k, v in sorted(pipe.steps[-1][1].get_params().items())},
                        "per_class": metrics.get("per_class")},
        )
    failed = [r for r in exported.parity if not r.passed]
    if failed:
        r = failed[0]
        raise ParityError(f"the {r.target} export does not answer like sklearn ({r.label_mismatches} label "
                          f"mismatches, max abs diff {r.max_abs_diff:.3g}, bound {r.bound:g}); nothing was written")
    with step("write bundle"):
        path = write_bundle(out, cfg.name, version, exported.files, exported.manifest)
    return TrainResult(path=path, metrics=metrics, parity=exported.parity, pipeline=pipe)
