"""``export``: a fitted pipeline and sample rows in, a verified bundle out.

The pipeline reads in a few lines: infer the schema, convert, build the golden
rows, check every target against sklearn, write the bundle atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier, is_outlier_detector, is_regressor

from skedge.runtime._errors import ExportError, ParityError
from skedge.runtime._model import Model
from skedge.runtime._parity import ParityRow
from skedge.runtime._schema import Feature, Schema

from ._schema import STATS_FROM_SAMPLE, as_text_columns, infer_features, text_columns
from ._steps import pipeline_steps
from .bundle import check_version
from .bundle import write_bundle as _write
from .card import render_card
from .explain import build_explanations
from .golden import GOLDEN_MODES, build_sweep, golden_from_sweep
from .onnx import OUTPUT_NAMES, run_limits, set_metadata, to_onnx
from .parity import check_target, parity_markdown, parity_plot
from .progress import describe_size, report

__all__ = ["export", "library_versions", "frame_sha256", "Exported", "DEFAULT_TARGETS"]

# what an export tries when the user names no targets: ONNX always, the others where they are exact
DEFAULT_TARGETS = ("onnx", "ort", "coreml")

_OUTPUTS = {
    "classification": ("label", "probabilities"),
    "regression": ("value",),
    "anomaly": ("label", "score"),
}


def library_versions() -> dict[str, str]:
    out = {}
    for dist in ("skedge", "scikit-learn", "numpy", "pandas", "onnx", "onnxruntime", "coremltools"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def frame_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a canonical form of a table: the same values give the same hash whatever file they came from.

    Column by column: its name, then numbers as little-endian float64 (every NaN the same bytes), or
    text as length-prefixed UTF-8 with missing values marked. Row order counts.
    """
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in frame.columns]).encode())
    for c in frame.columns:
        col = frame[c]
        h.update(b"\x00col" + str(c).encode())
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            x = col.to_numpy(dtype=np.float64, na_value=np.nan)
            x = np.where(np.isnan(x), np.nan, x + 0.0)  # one NaN bit pattern; -0.0 becomes 0.0
            h.update(b"n" + x.astype("<f8").tobytes())
        else:
            h.update(b"s")
            for v in col.tolist():
                if v is None or (isinstance(v, float) and v != v):
                    h.update(b"\xff")
                else:
                    b = str(v).encode()
                    h.update(len(b).to_bytes(4, "little") + b)
    return h.hexdigest()


def _check_can_export(pipeline: Any, final: Any, sample: pd.DataFrame) -> None:
    """Refuse, in words, what would otherwise fail deep inside the export."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(final)
    except NotFittedError:
        raise ExportError(f"the pipeline is not fitted ({type(final).__name__} has not seen data): "
                          "fit it before exporting") from None
    odd = [c for c in sample.columns if not isinstance(c, str)]
    if odd:
        raise ExportError(f"sample column {odd[0]!r} is not named by a string: name the columns "
                          "(pd.DataFrame(X, columns=[...])), fit the pipeline on that frame, and export it")
    dupes = sorted({c for c in sample.columns if list(sample.columns).count(c) > 1})
    if dupes:
        raise ExportError(f"sample has the column {dupes[0]!r} more than once: column names must be unique")
    try:
        pipeline.predict(sample.head(200))
    except ValueError as exc:
        raise ExportError(f"sklearn cannot predict the sample rows ({' '.join(str(exc).split())[:300]}); the "
                          "sample must be rows the pipeline accepts, like its training data") from None


def _task(final: Any) -> str:
    if is_classifier(final):
        return "classification"
    if is_regressor(final):
        return "regression"
    if is_outlier_detector(final):
        return "anomaly"
    raise ExportError(f"the last step ({type(final).__name__}) is neither a classifier, a regressor nor an "
                      "outlier detector")


class Exported:
    """What export produced, before it is written: files and the manifest."""

    def __init__(self, files: dict[str, bytes], manifest: dict[str, Any], parity: list[ParityRow]) -> None:
        self.files = files
        self.manifest = manifest
        self.parity = parity


def _coreml(pipeline: Any, schema: Schema, name: str, version: str) -> tuple[bytes | None, str | None, Any]:
    """(model.mlmodel bytes, why-not reason, predictor of the spec) — Core ML is optional per pipeline."""
    try:
        from .coreml import CoreMLUnsupported, evaluator_for, to_coreml
    except ImportError as exc:
        return None, f"Core ML export is not available here ({exc})", None
    try:
        data = to_coreml(pipeline, schema, name=name, version=version)
    except CoreMLUnsupported as exc:
        return None, str(exc), None
    return data, None, evaluator_for(data, schema)


def build(pipeline: Any, sample: pd.DataFrame, *, name: str, version: str = "1.0.0",
          schema: Schema | None = None, nullable: dict[str, bool] | bool | None = None, seed: int = 0,
          metrics: dict[str, float] | None = None, gates: dict[str, dict[str, float]] | None = None,
          provenance: dict[str, Any] | None = None, reports: dict[str, bytes] | None = None,
          description: str | None = None, targets: tuple[str, ...] | list[str] | None = None,
          tolerance: dict[str, Any] | None = None, golden: str = "mixed", target: str | None = None,
          compare: dict[str, float] | None = None, evaluation: dict[str, Any] | None = None,
          reference: pd.DataFrame | None = None) -> Exported:
    """Everything an export writes, checked; nothing written.

    ``targets``: None (the default) exports ONNX and tries ``DEFAULT_TARGETS``' optional ones: one that
    cannot be converted or does not answer like sklearn on the whole sweep is left out, its reason and
    measured difference in ``manifest["unavailable_targets"]`` and the card. Named targets must all
    pass: ``export`` raises ``ParityError`` for any that does not (``build`` reports it in ``parity``).
    ``golden``: "mixed" (default: golden rows hold no sample record whole) or "holdout" (real rows).
    ``target``: the label column's name and ``compare``: metric -> largest drop, both for the registry's gate
    against the previous version (``skedge promote --data``), carried in the manifest.
    ``reference``: the table the pipeline was trained on, for ``profile.json``'s feature distributions (drift
    monitoring); without it they come from ``sample`` (``skedge.exporter.profile``).
    """
    check_version(name, version)
    named = targets is not None
    wanted = tuple(DEFAULT_TARGETS if targets is None else targets)
    unknown = [t for t in wanted if t not in DEFAULT_TARGETS]
    if unknown or "onnx" not in wanted:
        raise ExportError(f"targets must include 'onnx' and be among {', '.join(DEFAULT_TARGETS)}; got "
                          f"{', '.join(map(str, wanted))}")
    if golden not in GOLDEN_MODES:
        raise ExportError(f"golden must be one of {', '.join(GOLDEN_MODES)}, not {golden!r}")
    if not isinstance(sample, pd.DataFrame) or sample.empty:
        raise ExportError("sample must be a non-empty pandas DataFrame of representative input rows")
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    feature_names = getattr(pipeline, "feature_names_in_", None)
    if feature_names is not None:
        missing = [c for c in feature_names if c not in sample.columns]
        if missing:
            raise ExportError(f"sample lacks the column {missing[0]!r} the pipeline was fitted on")
        sample = sample[list(feature_names)]
    # a column the pipeline was fitted on as text, read as numbers (a CSV of digit strings): its text again
    sample = as_text_columns(sample, text_columns(pipeline))
    _check_can_export(pipeline, final, sample)
    task = _task(final)
    raw_classes = getattr(pipeline, "classes_", None) if task == "classification" else None
    if isinstance(raw_classes, list) and any(isinstance(c, np.ndarray) for c in raw_classes):
        # one class list per output (a 2-D y): numpy's "can only convert an array of size 1" was the message
        raise ExportError(f"{type(final).__name__} was fitted on several targets (a class list per output): "
                          "multi-output classifiers are not exported; fit one classifier per target")
    classes = np.asarray(raw_classes) if task == "classification" else None
    # nullable where the fitted pipeline answers a missing value (asked of sklearn), unless the caller says
    features = schema.features if schema else infer_features(sample, nullable=nullable, pipeline=pipeline,
                                                             source=STATS_FROM_SAMPLE)
    kinds = _OUTPUTS[task]
    if task == "classification" and not hasattr(pipeline, "predict_proba"):
        # LinearSVC, RidgeClassifier, hard voting...: sklearn answers labels only, and so does the bundle
        kinds = ("label",)
    outputs = {k: OUTPUT_NAMES[k] for k in kinds}
    cls_json = tuple(c.item() if hasattr(c, "item") else c for c in classes) if classes is not None else None
    schema = Schema(features=tuple(features), task=task, classes=cls_json, outputs=outputs)

    report(f"convert to ONNX ({describe_size(final)})")
    model, ctx = to_onnx(pipeline, schema, graph_name=f"skedge_{name}".replace("-", "_").replace(".", "_"),
                         classes=classes)
    policy = {f.name: ("error" if f.name in ctx.strict_category_fields else "ignore")
              for f in schema.features if f.kind == "category"}
    # the categories the fitted encoders know, not only those the sample happens to hold
    # (an imputer's fill value is a category of the encoder, not of the input, unless the data holds it)
    def with_known(f: Feature) -> Feature:
        if f.kind != "category" or f.name not in ctx.categories:
            return f
        extra = ctx.categories[f.name] - ctx.fills.get(f.name, set())
        return dataclasses.replace(f, categories=tuple(sorted({*(f.categories or ()), *extra})))

    schema = dataclasses.replace(schema, features=tuple(with_known(f) for f in schema.features))
    features = tuple(_refuse_unknown_missing(pipeline, sample, f) if policy.get(f.name) == "error" else f
                     for f in schema.features)
    schema = Schema(features=features, task=task, classes=cls_json, outputs=outputs,
                    unknown_categories=policy)
    set_metadata(model, schema, extra=run_limits(ctx))
    onnx_bytes = model.SerializeToString()

    tol: dict[str, Any] = dict(tolerance or {"abs": 1e-5, "rel": 1e-5})
    if ctx.notes and "reason" not in tol:
        tol["reason"] = "; ".join(ctx.notes)
    report("build the golden rows and the threshold sweep (sklearn answers every row)")
    sweep, keep = build_sweep(pipeline, schema, sample, seed=seed, golden=golden)
    golden_json = golden_from_sweep(sweep, keep, schema, tol, golden)
    files: dict[str, bytes] = {"model.onnx": onnx_bytes}
    parity: list[ParityRow] = []
    got_by: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    dropped: dict[str, ParityRow] = {}

    def run(target: str, predict_outputs: Any, target_files: dict[str, bytes]) -> None:
        row, got = check_target(target, predict_outputs, sweep, tol)
        if row.passed or named or target == "onnx":  # a failure of these is export()'s refusal
            parity.append(row)
            files.update(target_files)
            got_by[target] = {k: [v[i] for i in keep] for k, v in got.items()}
            return
        # an optional target the user did not ask for by name: left out, and why, with the difference
        dropped[target] = row
        unavailable[target] = (f"does not answer like sklearn on the export sweep: {row.label_mismatches} label "
                               f"mismatches in {row.rows} rows, max abs diff {row.max_abs_diff:.3g}, max rel diff "
                               f"{row.max_rel_diff:.3g} (bound {row.bound:g})")

    def unavailable_target(target: str, why: str) -> None:
        if named:  # asked for by name: all or nothing
            raise ExportError(f"the {target} target was asked for (targets={list(wanted)}) but cannot be "
                              f"exported: {why}; nothing was written")
        unavailable[target] = why

    report("check ONNX parity on the sweep")
    run("onnx", Model(onnx_bytes, schema, source=Path("model.onnx"), target="onnx").predict_outputs, {})
    if "ort" in wanted:
        from .ort import to_ort

        report("convert to ORT format and check its parity")
        try:
            ort_bytes, ops = to_ort(onnx_bytes)
        except ExportError as exc:
            unavailable_target("ort", str(exc))
        else:
            run("ort", Model(ort_bytes, schema, source=Path("model.ort"), target="ort").predict_outputs,
                {"model.ort": ort_bytes, "required_operators.config": ops})
    if "coreml" in wanted:
        report("convert to Core ML and check its parity")
        ml, why, evaluator = _coreml(pipeline, schema, name, version)
        if ml is None:
            unavailable_target("coreml", str(why))
        else:
            run("coreml", evaluator.predict_outputs, {"model.mlmodel": ml})

    files["golden.json"] = (json.dumps(golden_json, sort_keys=True, allow_nan=False) + "\n").encode()
    files["profile.json"] = _profile(pipeline, schema, sample, reference)
    # explain.onnx (model.explain, the demo's chart) and the card's importances, or why the model is not explained
    explained = build_explanations(pipeline, schema, sample,
                                   graph_name=f"skedge_{name}".replace("-", "_").replace(".", "_"))
    files.update(explained.files)
    sweep_info = {"rows": len(sweep), "golden_rows": len(keep), "tree_splits": sweep.splits,
                  "boundaries_probed": sweep.probed, "splits_sampled": sweep.sampled, "golden": golden,
                  "packed": "threshold:packed" in sweep.kinds}
    pmd = parity_markdown(parity, golden_json, sweep=sweep_info, dropped=dropped)
    report_files = {f"report/{k}": v for k, v in (reports or {}).items()}
    report_files["report/parity.md"] = ("# Parity\n\n" + pmd).encode()
    report_files["report/parity.png"] = parity_plot(golden_json, got_by, classes=cls_json)
    files.update(report_files)

    prov = {
        "seed": seed,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": library_versions(),
        **(provenance or {}),
    }
    prov.setdefault("data", {"sha256": frame_sha256(sample), "rows": len(sample)})
    manifest: dict[str, Any] = {
        "description": description,
        "estimator": type(final).__name__,
        "pipeline": _describe(pipeline),
        "schema": schema.to_json(),
        "task": task,
        "classes": list(cls_json) if cls_json is not None else None,
        "outputs": outputs,
        "metrics": metrics or {},
        "gates": gates or {},
        "target": target,
        "compare": dict(compare or {}),
        # the trainer's intervals, baselines and slices (skedge.trainer.evaluate.Evaluation.to_json)
        **({"evaluation": evaluation} if evaluation else {}),
        "parity": {r.target: r.to_json() for r in parity},
        "parity_sweep": sweep_info,
        "unavailable_targets": unavailable,
        "dropped_targets": {t: r.to_json() for t, r in dropped.items()},
        "explain": explained.info,
        "provenance": prov,
    }
    card = render_card({"name": name, "version": version, **manifest}, schema, pmd,
                       reports=sorted(k for k in report_files if k.endswith(".png")))
    files["card.md"] = card.encode()
    return Exported(files, manifest, parity)


def _profile(pipeline: Any, schema: Schema, sample: pd.DataFrame, reference: pd.DataFrame | None) -> bytes:
    """profile.json (drift monitoring): a reference table is read the way the sample was."""
    from .profile import build_profile, profile_bytes

    if reference is not None:
        if not isinstance(reference, pd.DataFrame) or reference.empty:
            raise ExportError("reference must be a non-empty pandas DataFrame (the rows the pipeline was trained on)")
        reference = as_text_columns(reference, text_columns(pipeline))
    return profile_bytes(build_profile(pipeline, schema, sample, reference))


def _refuse_unknown_missing(pipeline: Any, sample: pd.DataFrame, f: Feature) -> Feature:
    """A field whose encoder rejects unknown categories takes a missing value only if missing was a
    category in training; otherwise sklearn raises, so the schema must say the field is not nullable
    (the ONNX graph would quietly one-hot it to zeros). Asked of sklearn itself, on one sample row."""
    if not f.nullable:
        return f
    for i in range(min(len(sample), 20)):  # from a row sklearn takes as it is, so only the NaN can fail
        row = sample.iloc[i:i + 1].copy()
        try:
            pipeline.predict(row)
        except ValueError:
            continue
        row[f.name] = pd.Series([np.nan], index=row.index, dtype=object)
        try:
            pipeline.predict(row)
        except ValueError:
            return dataclasses.replace(f, nullable=False)
        return f
    return f


def _describe(pipeline: Any) -> list[str]:
    steps = pipeline_steps(pipeline)
    return [f"{n}: {type(s).__name__}" for n, s in steps]


def _tree_hint(pipeline: Any) -> str:
    """A tree behind a curved step with something between them: the split fold (onnx/folding.py) moves a tree's
    thresholds onto the curved step's input only when the tree comes right after it."""
    steps = pipeline_steps(pipeline)
    if len(steps) < 3 or _tree_splits_or_none(steps[-1][1]) is None:
        return ""
    curved = [i for i, (_, s) in enumerate(steps[:-1]) if type(s).__name__ in _CURVED]
    if not curved or curved[-1] == len(steps) - 2:
        return ""
    name, step = steps[curved[-1]]
    between = steps[curved[-1] + 1:-1]
    after = ", ".join(f"{n!r} ({type(s).__name__})" for n, s in between)
    return (f"\n  Step {name!r} ({type(step).__name__}) is computed by onnxruntime a last bit apart from numpy, and "
            f"{after} {'stands' if len(between) == 1 else 'stand'} between it and the tree, so rows near a split "
            f"fall on the other side. Drop them (a tree needs no scaling), or put them before {name!r}.")


_CURVED = frozenset({"FunctionTransformer", "PowerTransformer", "QuantileTransformer"})


def _tree_splits_or_none(est: Any) -> Any:
    from ._sklearn_trees import tree_splits

    try:
        return tree_splits(est)
    except (AttributeError, ValueError):
        return None


def _neighbours_hint(pipeline: Any) -> str:
    """Nearest neighbours fail the proof at ties of distance: why, and what a user can do."""
    params = pipeline.get_params(deep=True).values() if hasattr(pipeline, "get_params") else ()
    names = sorted({type(v).__name__ for v in (pipeline, *params) if type(v).__name__.startswith("KNeighbors")})
    if not names:
        return ""
    return (f"\n  Nearest neighbours ({', '.join(names)}): where several training points are at the same distance "
            "from a row (repeated values in the training data), sklearn keeps those its search meets first, an "
            "order no graph can follow. Remove duplicate training points, or use another model.")


def _field_hint(pipeline: Any) -> str:
    """Which steps the field's converters made, and the way out, for a parity failure (issue 12.6)."""
    from .onnx._table import field_steps

    steps = field_steps(pipeline)
    if not steps:
        return _tree_hint(pipeline) or _neighbours_hint(pipeline)
    return (f"\n  Converted by the field's converters, not by skedge's exact ones: {', '.join(steps)}. Replace it "
            "with a step skedge converts itself (`skedge supported --target onnx`) or register a converter.")


def export(pipeline: Any, sample: pd.DataFrame, out: str | os.PathLike[str] = "models", *, name: str,
           version: str = "1.0.0", strict: bool = True, trusted: tuple[str, ...] | list[str] = (),
           **kwargs: Any) -> Path:
    """Export a fitted Pipeline (or bare estimator) and write a verified bundle to ``out/name/version``.

    ``pipeline`` may also be the path of a ``.skops`` file: it loads with skops' default trusted types
    plus the ``trusted`` type names, never more (see ``skedge.exporter.skops_io``).

    ``sample``: representative input rows (a DataFrame with the columns the pipeline takes); the schema
    is inferred from it, and the export sweep and golden rows are drawn from it. With ``strict`` (the
    default) a parity failure of ONNX or of a target named in ``targets=`` raises ``ParityError`` and nothing
    is written; with the default targets an optional one (ort, coreml) that is not exact is left out of the
    bundle, with its reason and measured difference in the manifest and the card. ``golden="holdout"``
    ships real sample rows in golden.json (by default no sample record is shipped whole).
    """
    if isinstance(pipeline, (str, os.PathLike)):
        from .skops_io import load_pipeline

        pipeline = load_pipeline(Path(pipeline), trusted=trusted)
    elif trusted:
        raise ExportError("trusted= names types to load from a .skops file; pipeline is already an object")
    exported = build(pipeline, sample, name=name, version=version, **kwargs)
    failed = [r for r in exported.parity if not r.passed]
    if failed and strict:
        r = failed[0]
        raise ParityError(
            f"the {r.target} export does not answer like sklearn: {r.label_mismatches} label mismatches in "
            f"{r.rows} rows of the export sweep, max abs diff {r.max_abs_diff:.3g}, max rel diff "
            f"{r.max_rel_diff:.3g} (bound {r.bound:g}); nothing was written" + _field_hint(pipeline)
        )
    report("write the bundle")
    return _write(out, name, version, exported.files, exported.manifest)

