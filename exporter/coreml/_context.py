"""What a Core ML converter may know about the export in progress."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Context", "Converter"]

# (builder, step, input features, context) -> list[Var] | Var (a transformer) or dict[str, Var] (an estimator:
# the pipeline outputs by kind, already named as ``context.outputs`` says)
Converter = Callable[..., Any]


@dataclass
class Context:
    """The export's fixed facts plus notes gathered on the way."""

    # output kind ("label", "probabilities", "value") -> the output name the model must use
    outputs: Mapping[str, str]
    # the model's input feature names: an app may feed NaN to any of them whatever the schema says, so an
    # imputer on an input is always written, even for a field the schema calls not nullable
    inputs: frozenset[str] = frozenset()
    notes: list[str] = field(default_factory=list)
    # a scaler's output name -> (its input columns, the fitted sklearn scaler): a tree after it may branch on
    # the inputs with thresholds mapped through sklearn's own arithmetic (trees.py), which is exact where
    # Core ML's Scaler (scale * (x + shift)) is an ulp off sklearn's (x - mean) / scale
    folds: dict[str, Any] = field(default_factory=dict)
