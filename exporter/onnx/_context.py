"""What a converter may know about the export in progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Context", "Converter"]

from collections.abc import Callable

# (graph, step, input, context) -> Var (transformer) or dict[str, Var] (final estimator)
Converter = Callable[..., Any]


@dataclass
class Context:
    """Mutable notes a conversion gathers on the way."""

    feature_names: list[str]
    # fields whose unseen categories sklearn would reject: the runtime must reject them too
    strict_category_fields: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    # input field -> the categories a fitted encoder knows for it (the schema must know them all,
    # not only those that happen to be in the export sample)
    categories: dict[str, set[str]] = field(default_factory=dict)
    # input field -> the values a string imputer fills in for missing ones
    fills: dict[str, set[str]] = field(default_factory=dict)
    # column index (in the current matrix) -> input feature name, kept while it is known
    origin: list[str | None] | None = None
    # inside a meta-estimator the parts' outputs are added and compared with each other, so a tree part must
    # answer sklearn's exact bits (the leaf-number layout), not onnxruntime's float32 sums (trees.py)
    exact_trees: bool = False
    # the most bytes the graph holds per input row where that is large (kNN's [rows, training rows, features]
    # differences): written as the model's rows-per-run bound, so that the runtime's batches stay bounded
    row_bytes: int = 0
