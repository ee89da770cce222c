"""The bridge to the field's converters: skl2onnx (and onnxmltools for XGBoost) behind skedge's table.

A step skedge has no converter of its own for is converted *alone* by the field's converter, with one input of
the width and element type skedge's graph has at that point, and the resulting sub-graph is inlined into
skedge's ``Graph`` with prefixed names. Its outputs are mapped to skedge's kinds (a transformer gives a matrix
``Var``; a final estimator gives ``label_index``/``probabilities``, ``value`` or ``label``/``score``), so the
model keeps skedge's input/output contract, and the export then goes through the golden rows and the parity
check like any other: nothing the field converts reaches a bundle unproven.

Why one step at a time and not the whole pipeline: skedge's own exact converters keep precedence (and its
ColumnTransformer, imputers and encoders keep the one-input-per-feature, missing-string contract), and a
failure names the user's step. Why inline and not ``onnx.compose``: skedge's names, opsets and initializer
de-duplication stay in one Graph, and the bytes stay reproducible (fixed names, skedge's sorted opsets).

Element type: double first; where the field's converter or onnxruntime has no double kernel (SVMs, linear
SVMs, trees of skl2onnx/onnxmltools: DESIGN.md "Coverage"), the input is cast to float32 before the sub-graph
and its outputs back to double afterwards; the parity check decides whether that is exact enough.

skl2onnx and onnxmltools are imported here, lazily, only when such a step is exported: never by the runtime.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from ._builder import DOUBLE, FLOAT, INT64, OPSETS, STRING, Graph, Var
from ._context import Context

__all__ = ["convert_with_skl2onnx", "convert_with_onnxmltools", "FIELD_TOOLS", "field_version"]

_SUB_GRAPH_NAME = "skedge_field_step"  # fixed: skl2onnx's default graph name is a random UUID
_DISTS = {"skl2onnx": "skl2onnx", "onnxmltools": "onnxmltools"}


def field_version(tool: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(_DISTS[tool])
    except metadata.PackageNotFoundError:
        return None


def _task(step: Any) -> str:
    from sklearn.base import is_classifier, is_outlier_detector, is_regressor
    from sklearn.feature_selection import SelectorMixin

    # RFE(Ridge()) takes its estimator's type (a regressor), yet in a pipeline it only selects columns
    if isinstance(step, SelectorMixin):
        return "transform"
    if is_classifier(step):
        return "classification"
    if is_regressor(step):
        return "regression"
    if is_outlier_detector(step):
        return "anomaly"
    return "transform"


# -- calling the field's converters -------------------------------------------------------------------------

def _skl2onnx_model(step: Any, elem: int, width: int, task: str) -> onnx.ModelProto:
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    except ImportError as exc:
        raise ValueError("it is converted by skl2onnx, which is not installed: pip install 'skedge[train]'") from exc
    tensors: dict[int, Any] = {DOUBLE: DoubleTensorType, FLOAT: FloatTensorType, STRING: StringTensorType}
    tensor = tensors[elem]
    kwargs: dict[str, Any] = dict(name=_SUB_GRAPH_NAME, initial_types=[("X", tensor([None, width]))],
                                  target_opset=dict(OPSETS))
    if task == "classification":
        # ZipMap outputs cannot be read by onnxruntime-web/-node (DESIGN.md); some converters (LinearSVC) take
        # no zipmap option at all and say so with an error, so they are asked again without it
        try:
            return _quiet(lambda: convert_sklearn(step, options={id(step): {"zipmap": False}}, **kwargs))
        except (NameError, RuntimeError, NotImplementedError, KeyError, TypeError):
            pass
    return _quiet(lambda: convert_sklearn(step, **kwargs))


def _onnxmltools_model(step: Any, elem: int, width: int, task: str) -> onnx.ModelProto:
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:
        raise ValueError("it is converted by onnxmltools, which is not installed: pip install 'skedge[xgboost]'"
                         ) from exc
    if elem != FLOAT:
        raise NotImplementedError("onnxmltools' tree converters take float32 input")
    module = type(step).__module__.split(".")[0]
    initial = [("X", FloatTensorType([None, width]))]
    # onnxmltools 1.16 converts up to opset 15 (it refuses more); its trees are ai.onnx.ml v1 operators, which
    # keep their meaning in the v3 skedge declares, and the checker validates the whole model afterwards
    opset = min(OPSETS[""], 15)
    if module == "xgboost":
        return _quiet(lambda: onnxmltools.convert_xgboost(step, name=_SUB_GRAPH_NAME, initial_types=initial,
                                                          target_opset=opset))
    # LightGBM is not sent here: it compares in float64, onnxmltools' trees in float32 (skedge's own: lgbm.py)
    raise ValueError(f"onnxmltools is not set up for {module} models in skedge")


def _quiet(make: Callable[[], onnx.ModelProto]) -> onnx.ModelProto:
    # the field's converters warn about opsets and deprecations on every call: noise for a user, and an error
    # under pytest's warnings-as-errors; what matters about the result is checked by the parity proof
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make()


def _probe(sub: onnx.ModelProto, elem: int, width: int) -> dict[str, tuple[int, int]]:
    """Load the sub-model in onnxruntime (a missing kernel fails here, not in the user's app) and run one row:
    output name -> (element type, width)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(sub.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    dummy: np.ndarray = (np.full((1, width), "a", dtype=object) if elem == STRING
                         else np.zeros((1, width), dtype=np.float64 if elem == DOUBLE else np.float32))
    got = sess.run(None, {sess.get_inputs()[0].name: dummy})
    out = {}
    for meta, value in zip(sess.get_outputs(), got, strict=True):
        arr = np.asarray(value)
        dtype = onnx.helper.np_dtype_to_tensor_dtype(arr.dtype) if arr.dtype.kind != "O" else STRING
        out[meta.name] = (int(dtype), int(arr.shape[1]) if arr.ndim == 2 else 1)
    return out


_MAKERS: dict[str, Callable[[Any, int, int, str], onnx.ModelProto]] = {
    "skl2onnx": _skl2onnx_model,
    "onnxmltools": _onnxmltools_model,
}
FIELD_TOOLS = tuple(_MAKERS)


def _sub_model(tool: str, step: Any, x: Var, task: str) -> tuple[onnx.ModelProto, int, dict[str, tuple[int, int]]]:
    """The field's model of ``step`` for input ``x``: double first, float32 where double has no converter or
    kernel. Returns (model, the element type it takes, its outputs)."""
    tries = [STRING] if x.dtype == STRING else ([DOUBLE, FLOAT] if tool == "skl2onnx" else [FLOAT])
    errors: list[Exception] = []
    for elem in tries:
        try:
            sub = _MAKERS[tool](step, elem, x.width, task)
            return sub, elem, _probe(sub, elem, x.width)
        except ValueError as exc:
            if "not installed" in str(exc):
                raise
            errors.append(exc)
        except Exception as exc:  # the field's converters raise anything (NameError, RuntimeError, ...)
            errors.append(exc)
    last = errors[-1]
    raise ValueError(f"{tool} {field_version(tool) or ''} cannot convert it: "
                     f"{type(last).__name__}: {' '.join(str(last).split())[:300]}")


# -- inlining ---------------------------------------------------------------------------------------------

def _inline(g: Graph, sub: onnx.ModelProto, feeds: dict[str, str], hint: str) -> dict[str, str]:
    """Copy ``sub``'s nodes and initializers into ``g``, every name prefixed and made unique by ``g``.
    ``feeds`` maps the sub-graph's inputs to names in ``g``; returns its outputs' names in ``g``."""
    for op in sub.opset_import:
        domain = op.domain or ""
        if domain not in OPSETS:
            raise ValueError(f"the converted step uses the operator domain {domain!r}, which skedge's models do "
                             "not declare")
        if op.version > OPSETS[domain]:
            raise ValueError(f"the converted step needs opset {op.version} of {domain or 'ai.onnx'!r}; skedge "
                             f"writes {OPSETS[domain]}")
    if len(sub.graph.sparse_initializer):
        raise ValueError("the converted step holds sparse initializers, which skedge does not inline")
    names = dict(feeds)

    def rename(name: str) -> str:
        if not name:
            return name  # an omitted optional input
        if name not in names:
            names[name] = g.name(f"{hint}_{name}")
        return names[name]

    def rename_graph(graph: onnx.GraphProto) -> None:
        # names are unique across nested scopes in ONNX, so one mapping serves a Scan/Loop body and its parent
        for init in graph.initializer:
            init.name = rename(init.name)
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            vi.name = rename(vi.name)
        for node in graph.node:
            rename_node(node)

    def rename_node(node: onnx.NodeProto) -> None:
        node.input[:] = [rename(i) for i in node.input]
        node.output[:] = [rename(o) for o in node.output]
        node.name = g.name(f"n_{hint}_{node.name or node.op_type}")
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                rename_graph(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for body in attr.graphs:
                    rename_graph(body)

    graph = copy.deepcopy(sub.graph)
    for init in graph.initializer:
        init.name = rename(init.name)
        g.initializers.append(init)
    for node in graph.node:
        rename_node(node)
        g.nodes.append(node)
    return {o.name: rename(o.name) for o in graph.output}


# -- mapping outputs to skedge's kinds --------------------------------------------------------------------

def _double(g: Graph, name: str, elem: int, width: int, hint: str) -> Var:
    v = Var(name, elem, width)
    return g.cast(v, DOUBLE, f"{hint}_double") if elem in (FLOAT, DOUBLE) else v


def _column(g: Graph, name: str, hint: str) -> str:
    """[N] or [N, 1] as [N, 1]."""
    return g.op1("Reshape", [name, g.const(np.array([-1, 1], dtype=np.int64), "shape_col")], hint)


def _flat(g: Graph, name: str, hint: str) -> str:
    """[N] or [N, 1] as [N]."""
    return g.op1("Reshape", [name, g.const(np.array([-1], dtype=np.int64), "shape_flat")], hint)


def _label_index(g: Graph, label: str, elem: int, classes: np.ndarray, hint: str) -> Var:
    """The position of the field's label in ``classes_``: the label itself is what sklearn's ``predict`` gives
    (an SVC's label comes from its decision values, not from its Platt probabilities)."""
    if elem == STRING:
        consts = np.array([str(c) for c in classes], dtype=object)
    elif elem == INT64 and classes.dtype.kind in "iub":
        consts = classes.astype(np.int64)
    else:
        raise ValueError(f"its label output has an element type ({elem}) skedge cannot match to classes_")
    eq = g.op1("Equal", [_column(g, label, f"{hint}_label_col"), g.const(consts.reshape(1, -1), f"{hint}_classes")],
               f"{hint}_is_class")
    hot = g.op1("Cast", [eq], f"{hint}_onehot", to=INT64)
    idx = g.op1("ArgMax", [hot], f"{hint}_label_index", axis=1, keepdims=0, select_last_index=0)
    return Var(idx, INT64, 1)


def _outputs(g: Graph, step: Any, task: str, got: dict[str, str], info: dict[str, tuple[int, int]],
             hint: str) -> Var | dict[str, Var]:
    by_name = {k: (got[k], *info[k]) for k in got}
    if task == "transform":
        if len(by_name) != 1:
            raise ValueError(f"the converted transformer has {len(by_name)} outputs, skedge expects one")
        name, elem, width = next(iter(by_name.values()))
        return _double(g, name, elem, width, hint)
    if task == "classification" and not hasattr(step, "predict_proba"):
        # its second output is a score, not sklearn's predict_proba (there is none): the label alone is kept
        if "label" not in by_name:
            raise ValueError(f"the converted classifier's outputs are {sorted(by_name)}, with no label")
        lname, lelem, _ = by_name["label"]
        return {"label_index": _label_index(g, lname, lelem, np.asarray(step.classes_), hint)}
    if task == "classification":
        if "label" not in by_name or "probabilities" not in by_name:
            raise ValueError(f"the converted classifier's outputs are {sorted(by_name)}, not label and probabilities")
        lname, lelem, _ = by_name["label"]
        pname, pelem, pwidth = by_name["probabilities"]
        classes = np.asarray(step.classes_)
        if pwidth != len(classes):
            raise ValueError(f"the converted classifier gives {pwidth} probability columns for {len(classes)} classes")
        return {"probabilities": _double(g, pname, pelem, pwidth, f"{hint}_proba"),
                "label_index": _label_index(g, lname, lelem, classes, hint)}
    if task == "regression":
        outs = [v for k, v in by_name.items() if k != "label"]
        if len(outs) != 1:
            raise ValueError(f"the converted regressor's outputs are {sorted(by_name)}, skedge expects one value")
        name, elem, width = outs[0]
        return {"value": _double(g, name, elem, width, f"{hint}_value")}
    if "label" not in by_name or "scores" not in by_name:
        raise ValueError(f"the converted outlier detector's outputs are {sorted(by_name)}, not label and scores")
    lname, lelem, _ = by_name["label"]
    sname, selem, _ = by_name["scores"]
    label = g.cast(Var(_flat(g, lname, f"{hint}_label"), lelem, 1), INT64, f"{hint}_label_int")
    return {"score": _double(g, _column(g, sname, f"{hint}_scores"), selem, 1, f"{hint}_score"), "label": label}


def _convert(tool: str, g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var | dict[str, Var]:
    m = g.matrix(x, "field_in")
    task = _task(step)
    sub, elem, info = _sub_model(tool, step, m, task)
    hint = type(step).__name__.lower()
    fed = g.cast(m, elem, f"{hint}_in") if elem != m.dtype else m
    if elem == FLOAT and m.dtype == DOUBLE:
        g.note(f"{type(step).__name__} runs in float32 ({tool}: no double kernel for it in onnxruntime)")
    got = _inline(g, sub, {sub.graph.input[0].name: fed.name}, hint)
    ctx.origin = None  # which output column comes from which input field is not known past a field converter
    return _outputs(g, step, task, got, info, hint)


def convert_with_skl2onnx(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var | dict[str, Var]:
    """Converter for every class the table routes to skl2onnx."""
    return _convert("skl2onnx", g, step, x, ctx)


def convert_with_onnxmltools(g: Graph, step: Any, x: Var | list[Var], ctx: Context) -> Var | dict[str, Var]:
    """Converter for XGBoost's sklearn estimators (through onnxmltools, in float32 as XGBoost compares)."""
    return _convert("onnxmltools", g, step, x, ctx)
