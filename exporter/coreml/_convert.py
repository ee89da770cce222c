"""Walk a fitted pipeline through the Core ML converter table and assemble one ``Pipeline`` model.

The model's interface mirrors the ONNX model's: one input per feature (``Double``
for numbers, NaN when missing; ``String`` for categories, ``""`` when missing),
outputs named as in the ONNX model (``label`` + ``probabilities``, or
``variable``), the schema and provenance in the metadata (``userDefined``:
``skedge.schema``, ``skedge.format``, ...). Nothing time-dependent goes in, and
the protobuf is serialized deterministically: the same pipeline gives the same
bytes.
"""

from __future__ import annotations

import json
from importlib import metadata as importlib_metadata
from typing import Any

from skedge.runtime._schema import Schema

from .._steps import describe_step, pipeline_steps, run_converter, unsupported
from ._builder import ARRAY, DOUBLE, INT64, SPEC_VERSION, STRING, Builder, CoreMLUnsupported, Var, describe
from ._context import Context
from ._proto import proto
from ._table import REFUSED, lookup, supported_names

__all__ = ["to_coreml", "convert_step", "COREML_FORMAT", "META_SCHEMA"]

COREML_FORMAT = "1"
META_SCHEMA = "skedge.schema"


def convert_step(b: Builder, name: str, step: Any, x: Any, ctx: Context) -> Any:
    conv = lookup(step)
    if conv is None:
        raise unsupported(name, step, error=CoreMLUnsupported, target="Core ML", refused=REFUSED,
                          supported=supported_names(), keyword="coreml")
    return run_converter(conv, (b, step, x, ctx), name=name, step=step, error=CoreMLUnsupported,
                         target="Core ML")


def _version(dist: str) -> str:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _input_note(f: Any) -> str:
    if f.kind == "category":
        known = ", ".join(f.categories or ())
        return f"category ({known}); missing: empty string" if known else "category; missing: empty string"
    return f"{f.kind}; missing: NaN" if f.nullable else f.kind


def to_coreml(pipeline: Any, schema: Schema, *, name: str, version: str) -> bytes:
    """The serialized Core ML spec (``model.mlmodel``) of a fitted pipeline; ``CoreMLUnsupported`` if it cannot be."""
    steps = pipeline_steps(pipeline)
    if schema.task not in ("classification", "regression"):
        final_name, final = steps[-1]
        why = REFUSED.get(type(final), f"{schema.task} models are not exported to Core ML")
        raise CoreMLUnsupported(f"{describe_step(final_name, final)} cannot be exported to Core ML: {why}")
    if schema.task == "classification" and "probabilities" not in schema.outputs:
        final_name, final = steps[-1]
        raise CoreMLUnsupported(f"{describe_step(final_name, final)} answers labels only (sklearn gives it no "
                                "predict_proba), and a Core ML classifier answers labels and probabilities")
    kinds = ("label", "probabilities") if schema.task == "classification" else ("value",)
    outputs = {k: schema.outputs[k] for k in kinds}
    b = Builder(reserved=[*schema.names, *outputs.values()])
    inputs = [Var(f.name, STRING if f.kind == "category" else DOUBLE, 1, nan=f.nullable and f.kind != "category")
              for f in schema.features]
    ctx = Context(outputs=outputs, inputs=frozenset(schema.names))
    x: Any = inputs
    for step_name, step in steps[:-1]:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        x = convert_step(b, step_name, step, x, ctx)
    final_name, final = steps[-1]
    out = convert_step(b, final_name, final, x, ctx)
    if not isinstance(out, dict) or set(out) != set(kinds):
        raise CoreMLUnsupported(f"the last step, {describe_step(final_name, final)}, is not a "
                                f"{schema.task} estimator skedge can export")

    m = proto().Model_pb2.Model()
    m.specificationVersion = SPEC_VERSION
    desc = m.description
    for f, v in zip(schema.features, inputs, strict=True):
        describe(desc.input.add(), v, _input_note(f))
    for kind in kinds:
        var = out[kind]
        if var.name != outputs[kind] or (kind == "probabilities" and var.kind != ARRAY) or (
                kind == "label" and var.kind not in (STRING, INT64)) or (kind == "value" and var.kind != DOUBLE):
            raise CoreMLUnsupported(f"converter for {type(final).__name__} returned a malformed {kind} output")
        note = {"label": "predicted class",
                "probabilities": "one probability per class, in this order: "
                                 + ", ".join(str(c) for c in (schema.classes or ())),
                "value": "predicted value"}[kind]
        describe(desc.output.add(), var, note)
    meta = desc.metadata
    meta.shortDescription = f"{name} {version}: {schema.task} exported by skedge"
    meta.versionString = version
    meta.author = "skedge"
    user = {
        META_SCHEMA: json.dumps(schema.to_json(), sort_keys=True),
        "skedge.format": COREML_FORMAT,
        "skedge.name": name,
        "skedge.version": version,
        "skedge.provenance": json.dumps({
            "pipeline": [f"{n}: {type(s).__name__}" for n, s in steps],
            "libraries": {d: _version(d) for d in ("skedge", "scikit-learn", "coremltools")},
        }, sort_keys=True),
    }
    for key in sorted(user):
        meta.userDefined[key] = user[key]
    m.pipeline.models.extend(b.models)
    m.pipeline.names.extend(b.names)
    return m.SerializeToString(deterministic=True)
