"""Walk a fitted pipeline through the converter table and assemble the ONNX model."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import helper

from skedge.runtime._errors import ExportError
from skedge.runtime._schema import Schema

from .._steps import describe_step, pipeline_steps, run_converter, unsupported
from ._builder import BOOL, DOUBLE, INT64, OPSETS, STRING, Graph, Var
from ._context import Context
from ._table import REFUSED, lookup, supported_names
from .meta import TAKES_STRINGS

__all__ = ["convert_step", "to_onnx", "set_metadata", "run_limits", "RUN_BYTES", "OUTPUT_NAMES", "ONNX_FORMAT"]

ONNX_FORMAT = "1"
# The ONNX output names per output kind (skl2onnx's names, so existing apps find them).
OUTPUT_NAMES = {"label": "label", "probabilities": "probabilities", "value": "variable", "score": "scores"}


def convert_step(g: Graph, name: str, step: Any, x: Any, ctx: Context) -> Any:
    conv = lookup(step)
    if conv is None:
        raise unsupported(name, step, error=ExportError, target="ONNX", refused=REFUSED,
                          supported=supported_names(), keyword="onnx")
    return run_converter(conv, (g, step, x, ctx), name=name, step=step, error=ExportError, target="ONNX")


def _classes_const(g: Graph, classes: np.ndarray) -> tuple[str, int]:
    if classes.dtype.kind == "b":  # a bool label stays a bool: `if model.predict(row):` must mean what it says
        return g.const(classes.astype(bool), "classes"), BOOL
    if classes.dtype.kind in "iu":
        return g.const(classes.astype(np.int64), "classes"), INT64
    if classes.dtype.kind == "f":
        return g.const(classes.astype(np.float64), "classes"), DOUBLE
    return g.const(np.array([str(c) for c in classes], dtype=object), "classes"), STRING


def to_onnx(pipeline: Any, schema: Schema, *, graph_name: str, classes: np.ndarray | None = None
            ) -> tuple[onnx.ModelProto, Context]:
    """Convert ``pipeline`` (fitted; input a DataFrame with the schema's columns) to an ONNX model."""
    g = Graph()
    for out_name in OUTPUT_NAMES.values():
        g.reserve(out_name)
    inputs = []
    clash = sorted(set(schema.names) & set(OUTPUT_NAMES.values()))
    if clash:
        raise ExportError(f"input column {clash[0]!r} has the name of a model output; rename the column")
    for f in schema.features:
        g.reserve(f.name)
        dtype = STRING if f.kind == "category" else DOUBLE
        inputs.append(Var(f.name, dtype, 1))
    ctx = Context(feature_names=schema.names, origin=[f.name for f in schema.features])
    steps = pipeline_steps(pipeline)
    x: Any = inputs
    for name, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        x = convert_step(g, name, step, x, ctx)
    final_name, final = steps[-1]
    # an estimator with native categorical features takes the strings itself: its converter decides
    native = bool(np.any(getattr(final, "is_categorical_", None) is not None and final.is_categorical_))
    native = native or lookup(final) in TAKES_STRINGS  # a meta-estimator: its parts decide (meta.py)
    if isinstance(x, list) and any(v.dtype == STRING for v in x) and not native:
        raise ExportError(f"{describe_step(final_name, final)} receives string columns: "
                          "encode categories (OneHotEncoder in a ColumnTransformer) before the estimator")
    out = convert_step(g, final_name, final, x, ctx)
    if not isinstance(out, dict):
        raise ExportError(f"the last step, {describe_step(final_name, final)}, is a transformer, not an estimator")

    outputs = []
    if "label_index" in out:
        if classes is None:
            raise ExportError("a classifier without classes_")
        cname, ctype = _classes_const(g, classes)
        g.op("Gather", [cname, out["label_index"].name], out_names=[OUTPUT_NAMES["label"]], axis=0)
        outputs.append(helper.make_tensor_value_info(OUTPUT_NAMES["label"], ctype, [None]))
        out = {k: v for k, v in out.items() if k != "label_index"}
    # a classifier sklearn gives no predict_proba (LinearSVC, hard voting): its bundle answers labels only,
    # whatever scores the converter computed on the way
    out = {k: v for k, v in out.items() if k in schema.outputs}
    for kind, var in out.items():
        oname = OUTPUT_NAMES[kind]
        g.op("Identity", [var.name], out_names=[oname])
        shape = [None] if kind == "label" else [None, var.width]
        outputs.append(helper.make_tensor_value_info(oname, var.dtype, shape))

    graph = helper.make_graph(
        g.nodes, graph_name,
        [helper.make_tensor_value_info(v.name, v.dtype, [None, 1]) for v in inputs],
        outputs, initializer=g.initializers,
    )
    # sorted opset_import: skl2onnx's order follows the string hash seed; ours never varies
    # a contrib domain only where a node uses it (com.microsoft's Tokenizer for text: exporter/onnx/text.py)
    used = dict(OPSETS) | {n.domain: 1 for n in g.nodes if n.domain not in OPSETS and n.domain != "ai.onnx"}
    opsets = [helper.make_opsetid(domain, version) for domain, version in sorted(used.items())]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="skedge", producer_version=ONNX_FORMAT)
    model.ir_version = 10
    ctx.notes.extend(n for n in g.notes if n not in ctx.notes)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the ONNX graph skedge built is invalid: {exc}") from exc
    return model, ctx


# What one run of a model may hold in intermediates (per run: the runtime runs two at once on two cores).
RUN_BYTES = 256 * 2**20


def run_limits(ctx: Context) -> dict[str, str]:
    """The metadata that bounds a run's rows, for a graph whose intermediates grow large per row (kNN)."""
    if not ctx.row_bytes:
        return {}
    return {"skedge.rows_per_run": str(max(1, RUN_BYTES // ctx.row_bytes))}


def set_metadata(model: onnx.ModelProto, schema: Schema, extra: dict[str, str] | None = None) -> None:
    """Make a bare .onnx self-describing: the schema and format in ``metadata_props``, sorted."""
    meta = {"skedge.schema": json.dumps(schema.to_json(), sort_keys=True), "skedge.format": ONNX_FORMAT}
    meta.update(extra or {})
    del model.metadata_props[:]
    helper.set_model_props(model, dict(sorted(meta.items())))
