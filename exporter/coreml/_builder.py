"""The pieces a Core ML converter writes with: named features (``Var``) and the ``Builder``.

The exported model is one Core ML ``Pipeline``: a list of small models that
pass named features to each other (the same name-based wiring as an ONNX
graph). A converter receives the features its step reads and returns the
features it writes; the builder keeps the sub-models in order and the names
unique.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from skedge.runtime._errors import ExportError

from ._proto import proto

__all__ = ["Var", "Builder", "DOUBLE", "STRING", "INT64", "ARRAY", "SPEC_VERSION", "CoreMLUnsupported",
           "describe"]

DOUBLE = "double"
STRING = "string"
INT64 = "int64"
ARRAY = "array"  # a one-dimensional MultiArray of doubles, shape [width]

# Specification version 3 (iOS 12, macOS 10.14): every message skedge writes exists since version 1, and the
# neural-network layers it uses map a [C] MultiArray to a rank-5 [1, 1, C, 1, 1] tensor, a mapping the format
# supports only up to version 3 (NeuralNetworkMultiArrayShapeMapping.RANK5_ARRAY_MAPPING).
SPEC_VERSION = 3


class CoreMLUnsupported(ExportError):
    """The pipeline cannot be written as a Core ML model; the message names the step and why.

    Not fatal for an export: the bundle is written without ``model.mlmodel`` and the
    manifest records the reason (``unavailable_targets.coreml``).
    """


@dataclass(frozen=True)
class Var:
    """A feature flowing through the Core ML pipeline."""

    name: str
    kind: str
    width: int = 1
    # may hold NaN (a missing number): decides whether an imputer is needed and whether a step whose
    # NaN behaviour the format leaves open (max/min layers) may be used
    nan: bool = False


def describe(fd: Any, var: Var, short: str = "") -> None:
    """Fill a ``FeatureDescription`` for ``var``."""
    fd.name = var.name
    if short:
        fd.shortDescription = short
    ft = fd.type
    if var.kind == DOUBLE:
        ft.doubleType.SetInParent()
    elif var.kind == STRING:
        ft.stringType.SetInParent()
    elif var.kind == INT64:
        ft.int64Type.SetInParent()
    elif var.kind == ARRAY:
        ft.multiArrayType.shape.append(var.width)
        ft.multiArrayType.dataType = proto().FeatureTypes_pb2.ArrayFeatureType.DOUBLE
    else:  # pragma: no cover - a converter bug
        raise ValueError(f"unknown feature kind {var.kind!r}")


class Builder:
    """Collects the pipeline's sub-models in order and hands out unique feature names."""

    def __init__(self, reserved: Iterable[str]) -> None:
        self.models: list[Any] = []
        self.names: list[str] = []
        self._used = set(reserved)
        self._count: dict[str, int] = {}

    def name(self, hint: str) -> str:
        base = f"__{hint}"
        n = self._count.get(base, 0)
        while True:
            candidate = base if n == 0 else f"{base}_{n}"
            n += 1
            if candidate not in self._used:
                self._count[base] = n
                self._used.add(candidate)
                return candidate

    def reserve(self, name: str) -> str:
        """Claim an exact name (a pipeline output such as ``probabilities``)."""
        self._used.add(name)
        return name

    def model(self, inputs: Sequence[Var], outputs: Sequence[Var], hint: str) -> Any:
        """A new sub-model reading ``inputs`` and writing ``outputs``; the caller fills in its type."""
        m = proto().Model_pb2.Model()
        m.specificationVersion = SPEC_VERSION
        seen: set[str] = set()
        for v in inputs:
            if v.name not in seen:
                describe(m.description.input.add(), v)
                seen.add(v.name)
        for v in outputs:
            describe(m.description.output.add(), v)
        self.models.append(m)
        self.names.append(f"{len(self.models) - 1:02d}_{hint}")
        return m

    def var(self, hint: str, kind: str, width: int = 1, nan: bool = False) -> Var:
        return Var(self.name(hint), kind, width, nan)

    def vectorize(self, xs: Var | Sequence[Var], hint: str = "features") -> Var:
        """One MultiArray of the given doubles and arrays, in order (a ``FeatureVectorizer``)."""
        if isinstance(xs, Var):
            xs = [xs]
        if len(xs) == 1 and xs[0].kind == ARRAY:
            return xs[0]
        for v in xs:
            if v.kind not in (DOUBLE, ARRAY):
                raise CoreMLUnsupported(f"feature {v.name!r} is a {v.kind}: only numbers can enter a numeric step "
                                        "(encode categories with a OneHotEncoder first)")
        if not xs:
            raise CoreMLUnsupported("a step outputs no columns")
        out = self.var(hint, ARRAY, sum(v.width for v in xs), any(v.nan for v in xs))
        m = self.model(xs, [out], "vectorize")
        for v in xs:
            col = m.featureVectorizer.inputList.add()
            col.inputColumn = v.name
            col.inputDimensions = v.width
        return out
