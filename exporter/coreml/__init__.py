"""Core ML export: skedge's own converters (one table) and a reference evaluator for Linux parity.

    to_coreml(pipeline, schema, name=..., version=...) -> bytes     # model.mlmodel, or CoreMLUnsupported
    evaluator_for(data, schema).predict_outputs(rows)               # what export checks parity with
    load_coreml("model.mlmodel").predict(rows)                      # Core ML on macOS, the evaluator elsewhere

Built on coremltools' protobuf messages only (not on ``coremltools.converters.sklearn``,
which caps scikit-learn at 1.5). See ``docs/coreml.md``.
"""

from ._builder import CoreMLUnsupported
from ._convert import COREML_FORMAT, META_SCHEMA, to_coreml
from ._model import CoreMLModel, evaluator_for, load_coreml
from ._table import COREML_CONVERTERS
from .evaluator import SpecEvaluator

__all__ = [
    "COREML_CONVERTERS",
    "COREML_FORMAT",
    "META_SCHEMA",
    "CoreMLModel",
    "CoreMLUnsupported",
    "SpecEvaluator",
    "evaluator_for",
    "load_coreml",
    "to_coreml",
]
