"""skedge.exporter: a fitted scikit-learn pipeline in, a verified bundle out.

    from skedge.exporter import export
    path = export(pipeline, sample_frame, "models", name="churn", version="1.0.0")

Needs the ``train`` extra.
"""

from __future__ import annotations

try:
    import onnx as _onnx  # noqa: F401
    import pandas as _pandas  # noqa: F401
    import sklearn as _sklearn  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in the runtime-only venv test
    raise ImportError(
        f"skedge.exporter needs the 'train' extra ({_exc.name} is missing): pip install 'skedge[train]'"
    ) from _exc

from typing import Any

from skedge.runtime._errors import ExportError, ParityError

from ._export import build, export
from .onnx import ONNX_CONVERTERS
from .onnx._context import Converter

__all__ = ["export", "build", "register_converter", "load_coreml", "ExportError", "ParityError"]


def register_converter(cls: type, *, onnx: Converter | None = None, coreml: Any = None) -> None:
    """Teach the exporter a class of your own.

    ``onnx(graph, step, x, ctx) -> Var`` (a transformer) or ``-> dict[str, Var]`` (a final estimator);
    see ``skedge.exporter.onnx.clipper`` for a worked example. ``coreml`` goes into the Core ML table.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_converter takes a class, got {cls!r}")
    if onnx is None and coreml is None:
        raise TypeError("register_converter needs onnx=... and/or coreml=...")
    if onnx is not None:
        ONNX_CONVERTERS[cls] = onnx
    if coreml is not None:
        from .coreml import COREML_CONVERTERS

        COREML_CONVERTERS[cls] = coreml


def load_coreml(path: Any) -> Any:
    """A Core ML model with the runtime's predict / predict_proba: the reference evaluator off macOS."""
    from .coreml import load_coreml as _load

    return _load(path)
