"""skedge.runtime: load a skedge bundle (or a bare .onnx/.ort) and predict.

Needs numpy and onnxruntime only: no scikit-learn, pandas, pickle or network (``follow``, a live model
updated from a signed channel, is the one exception: stdlib ``urllib``).

    from skedge.runtime import load
    model = load("models/penguins/1.0.0")
    model.predict({"island": "Biscoe", "bill_length_mm": 39.1, ...})

Batch scoring (columns in, columns out, one session per process): ``BatchScorer``;
on Dask: ``skedge.runtime.dask`` (the ``dask`` extra, imported only when used).
"""

from ._batch import BatchScorer
from ._errors import (
    BundleError,
    ConfigError,
    DataError,
    EngineError,
    ExportError,
    GateError,
    ParityError,
    SchemaError,
    SkedgeError,
)
from ._model import Model, load
from ._parity import ParityRow
from ._schema import Feature, Schema, normalize_category
from .explain import Explanation
from .follow import LiveModel, UpdateEvent, follow
from .missing import MISSING_CATEGORY, MISSING_TEXT
from .monitor import Monitor, add_summaries

__all__ = [
    "load",
    "Model",
    "Explanation",
    "follow",
    "LiveModel",
    "UpdateEvent",
    "BatchScorer",
    "Monitor",
    "add_summaries",
    "Schema",
    "Feature",
    "ParityRow",
    "normalize_category",
    "MISSING_CATEGORY",
    "MISSING_TEXT",
    "SkedgeError",
    "SchemaError",
    "BundleError",
    "ConfigError",
    "DataError",
    "GateError",
    "ExportError",
    "ParityError",
    "EngineError",
]
