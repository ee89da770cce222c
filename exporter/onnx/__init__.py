"""ONNX conversion: the converter table and the graph builder."""

from ._builder import Graph, Var
from ._context import Context
from ._convert import OUTPUT_NAMES, convert_step, set_metadata, to_onnx
from ._table import ONNX_CONVERTERS, lookup

__all__ = ["Graph", "Var", "Context", "OUTPUT_NAMES", "ONNX_CONVERTERS", "convert_step", "lookup", "set_metadata",
           "to_onnx"]
