"""A small ONNX graph builder the converters share.

Values flow as ``Var``: a tensor name, its element type and its width (columns).
A converter receives either one ``Var`` matrix or a list of one-column ``Var``s
(what a ColumnTransformer hands each of its transformers) and returns a ``Var``
(transformers) or a dict of outputs (final estimators).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

__all__ = ["Var", "Graph", "DOUBLE", "FLOAT", "STRING", "INT32", "INT64", "BOOL", "OPSETS"]

DOUBLE = TensorProto.DOUBLE
FLOAT = TensorProto.FLOAT
STRING = TensorProto.STRING
INT64 = TensorProto.INT64
INT32 = TensorProto.INT32
BOOL = TensorProto.BOOL
# Pinned: opset 21 is the first where Equal/Where take strings in onnxruntime;
# ai.onnx.ml 3 is the first with double thresholds for trees (DESIGN.md).
OPSETS = {"": 21, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class Var:
    name: str
    dtype: int
    width: int


class Graph:
    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._used: set[str] = set()
        self._consts: dict[tuple[Any, ...], str] = {}
        # why a bound is what it is, said by the converter that knows (goes into golden.json and the card)
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # names are deterministic: a hint plus a counter, never a UUID (reproducible bytes)
    def name(self, hint: str) -> str:
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in hint) or "t"
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._used.add(name)

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
        if arr.dtype.kind in "UO":
            arr = arr.astype(object)
        key = (arr.dtype.str, arr.shape, tuple(arr.ravel().tolist()))
        if key in self._consts:
            return self._consts[key]
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        self._consts[key] = name
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, *, outputs: int = 1,
           domain: str = "", out_names: list[str] | None = None, **attrs: Any) -> list[str]:
        outs = out_names or [self.name(f"{hint or op_type.lower()}") for _ in range(outputs)]
        node_name = self.name(f"n_{hint or op_type.lower()}")
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=node_name, domain=domain, **attrs))
        return outs

    def op1(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        return self.op(op_type, inputs, hint, **attrs)[0]

    # -- common shapes --------------------------------------------------
    def matrix(self, x: Var | list[Var], hint: str = "concat") -> Var:
        """One double matrix from a Var or a list of one-column Vars."""
        if isinstance(x, Var):
            return x
        if not x:
            raise ValueError("no columns")
        if len(x) == 1:
            return x[0]
        dtypes = {v.dtype for v in x}
        if len(dtypes) != 1:
            raise TypeError("cannot put number and string columns in one matrix")
        name = self.op1("Concat", [v.name for v in x], hint, axis=1)
        return Var(name, x[0].dtype, sum(v.width for v in x))

    def columns(self, x: Var | list[Var], hint: str = "col") -> list[Var]:
        """One-column Vars from a Var or a list of them."""
        if isinstance(x, list):
            return x
        if x.width == 1:
            return [x]
        out = []
        for j in range(x.width):
            idx = self.const(np.array([j], dtype=np.int64), "idx")
            out.append(Var(self.op1("Gather", [x.name, idx], hint, axis=1), x.dtype, 1))
        return out

    def cast(self, x: Var, to: int, hint: str = "cast") -> Var:
        if x.dtype == to:
            return x
        return Var(self.op1("Cast", [x.name], hint, to=to), to, x.width)

    def select(self, x: Var, idx: list[int], hint: str = "select") -> Var:
        if list(idx) == list(range(x.width)):
            return x
        c = self.const(np.asarray(idx, dtype=np.int64), "idx")
        return Var(self.op1("Gather", [x.name, c], hint, axis=1), x.dtype, len(idx))
