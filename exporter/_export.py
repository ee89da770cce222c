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

from ._schema import infer_features
from .bundle import check_version
from .bundle import write_bundle as _write
from .card import render_card
from .golden import build_golden
from .onnx import OUTPUT_NAMES, set_metadata, to_onnx
from .parity import check_target, parity_markdown, parity_plot

__all__ = ["export", "library_versions", "frame_sha256", "Exported"]

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
          description: str | None = None, targets: tuple[str, ...] = ("onnx", "ort", "coreml"),
          tolerance: dict[str, Any] | None = None) -> Exported:
    check_version(name, version)
    if not isinstance(sample, pd.DataFrame) or sample.empty:
        raise ExportError("sample must be a non-empty pandas DataFrame of representative input rows")
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    feature_names = getattr(pipeline, "feature_names_in_", None)
    if feature_names is not None:
        missing = [c for c in feature_names if c not in sample.columns]
        if missing:
            raise ExportError(f"sample lacks the column {missing[0]!r} the pipeline was fitted on")
        sample = sample[list(feature_names)]
    _check_can_export(pipeline, final, sample)
    task = _task(final)
    classes = np.asarray(getattr(pipeline, "classes_", None)) if task == "classification" else None
    features = schema.features if schema else infer_features(sample, nullable=nullable)
    outputs = {k: OUTPUT_NAMES[k] for k in _OUTPUTS[task]}
    cls_json = tuple(c.item() if hasattr(c, "item") else c for c in classes) if classes is not None else None
    schema = Schema(features=tuple(features), task=task, classes=cls_json, outputs=outputs)

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
    set_metadata(model, schema)
    onnx_bytes = model.SerializeToString()

    tol: dict[str, Any] = dict(tolerance or {"abs": 1e-5, "rel": 1e-5})
    if ctx.notes and "reason" not in tol:
        tol["reason"] = "; ".join(ctx.notes)
    golden = build_golden(pipeline, schema, sample, seed=seed, tolerance=tol)
    files: dict[str, bytes] = {"model.onnx": onnx_bytes}
    parity: list[ParityRow] = []
    got_by: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}

    def run(target: str, data: bytes) -> None:
        m = Model(data, schema, source=Path(f"model.{target}"), target=target)
        row, got = check_target(target, m.predict_outputs, golden)
        parity.append(row)
        got_by[target] = got

    run("onnx", onnx_bytes)
    if "ort" in targets:
        from .ort import to_ort

        ort_bytes, ops = to_ort(onnx_bytes)
        files["model.ort"], files["required_operators.config"] = ort_bytes, ops
        run("ort", ort_bytes)
    if "coreml" in targets:
        ml, why, evaluator = _coreml(pipeline, schema, name, version)
        if ml is None:
            unavailable["coreml"] = str(why)
        else:
            files["model.mlmodel"] = ml
            row, got = check_target("coreml", evaluator.predict_outputs, golden)
            parity.append(row)
            got_by["coreml"] = got

    files["golden.json"] = (json.dumps(golden, sort_keys=True, allow_nan=False) + "\n").encode()
    pmd = parity_markdown(parity, golden)
    report_files = {f"report/{k}": v for k, v in (reports or {}).items()}
    report_files["report/parity.md"] = ("# Parity\n\n" + pmd).encode()
    report_files["report/parity.png"] = parity_plot(golden, got_by)
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
        "parity": {r.target: r.to_json() for r in parity},
        "unavailable_targets": unavailable,
        "provenance": prov,
    }
    card = render_card({"name": name, "version": version, **manifest}, schema, pmd,
                       reports=sorted(k for k in report_files if k.endswith(".png")))
    files["card.md"] = card.encode()
    return Exported(files, manifest, parity)


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
    steps = pipeline.steps if hasattr(pipeline, "steps") else [("estimator", pipeline)]
    return [f"{n}: {type(s).__name__}" for n, s in steps]


def export(pipeline: Any, sample: pd.DataFrame, out: str | os.PathLike[str] = "models", *, name: str,
           version: str = "1.0.0", strict: bool = True, **kwargs: Any) -> Path:
    """Export a fitted Pipeline (or bare estimator) and write a verified bundle to ``out/name/version``.

    ``sample``: representative input rows (a DataFrame with the columns the pipeline takes); the schema
    is inferred from it and its rows become the holdout part of the golden vectors. With ``strict``
    (the default) a parity failure raises ``ParityError`` and nothing is written.
    """
    exported = build(pipeline, sample, name=name, version=version, **kwargs)
    failed = [r for r in exported.parity if not r.passed]
    if failed and strict:
        r = failed[0]
        raise ParityError(
            f"the {r.target} export does not answer like sklearn: {r.label_mismatches} label mismatches in "
            f"{r.rows} golden rows, max abs diff {r.max_abs_diff:.3g} (bound {r.bound:g}); nothing was written"
        )
    return _write(out, name, version, exported.files, exported.manifest)

