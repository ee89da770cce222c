"""ONNX conversion: the converter table and the graph builder."""

from ._builder import Graph, Var
from ._context import Context
from ._convert import OUTPUT_NAMES, RUN_BYTES, convert_step, run_limits, set_metadata, to_onnx
from ._table import ONNX_CONVERTERS, lookup

__all__ = ["Graph", "Var", "Context", "OUTPUT_NAMES", "RUN_BYTES", "ONNX_CONVERTERS", "convert_step", "lookup",
           "run_limits", "set_metadata", "to_onnx"]
