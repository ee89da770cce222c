"""Explanations on the device: ``model.explain(rows)`` runs the bundle's ``explain.onnx`` (numpy + onnxruntime).

The graph itself computes the contributions (``skedge.exporter.onnx.explain`` says how, per family), so the
browser demo and any onnxruntime app read the same numbers as Python. ``explain.onnx`` is a file of its own,
hashed in the manifest like every file and loaded on the first call: plain prediction never pays for it.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import BundleError
from ._schema import InputPlan, Schema

if TYPE_CHECKING:
    from ._model import Model

__all__ = ["Explanation", "Explainer", "EXPLAIN_FILE", "explain"]

EXPLAIN_FILE = "explain.onnx"
_OUTPUTS = ["contributions", "bias", "output"]


@dataclass(frozen=True)
class Explanation:
    """What each input feature added to each row's answer.

    ``contributions``: ``(rows, features, classes)`` for a classifier (probabilities of every class, both for a
    binary one), ``(rows, features)`` for a regressor; ``bias``: ``(classes,)`` or a 0-d array, the answer
    before any feature is known; ``output``: ``(rows, classes)`` or ``(rows,)``, the probabilities or values the
    model answers. ``bias + contributions.sum(axis=1) == output`` (to 1e-9).
    """

    features: tuple[str, ...]
    classes: tuple[Any, ...] | None
    contributions: np.ndarray
    bias: np.ndarray
    output: np.ndarray
    method: str = ""

    def ranked(self, row: int = 0, cls: int | None = None) -> list[tuple[str, float]]:
        """(feature, contribution) of one row, largest magnitude first; for a classifier the class ``cls``
        (default: the row's most probable class)."""
        c = self.contributions[row]
        if c.ndim == 2:
            k = int(np.argmax(self.output[row])) if cls is None else cls
            c = c[:, k]
        order = np.argsort(-np.abs(c), kind="stable")
        return [(self.features[i], float(c[i])) for i in order]


class Explainer:
    """One session over ``explain.onnx``; thread-safe like ``Model``."""

    def __init__(self, data: bytes, schema: Schema, *, source: Path, method: str = "") -> None:
        from ._model import _check_inputs, _session

        self.schema = schema
        self.source = source
        self.method = method
        self._session = _session(data, source)
        _check_inputs(self._session, schema, source)
        names = {o.name for o in self._session.get_outputs()}
        if not set(_OUTPUTS) <= names:
            raise BundleError(f"{source} lacks the outputs {sorted(set(_OUTPUTS) - names)}: it is not a skedge "
                              "explanation graph; export the model again")
        self._plan = InputPlan(schema)

    def explain(self, rows: Any) -> Explanation:
        feeds, n, _single = self._plan.feeds(rows)
        classification = self.schema.task == "classification"
        if n == 0:
            k = len(self.schema.classes or ()) if classification else 1
            contrib, bias, out = np.empty((0, len(self.schema.names), k)), np.zeros(k), np.empty((0, k))
        else:
            try:
                contrib, bias, out = self._session.run(_OUTPUTS, feeds)
            except Exception as exc:  # valid feeds the graph cannot run: the file is at fault
                from ._model import _ort_message

                raise BundleError(f"{self.source}: onnxruntime could not run the explanation graph on valid "
                                  f"input ({_ort_message(exc)}); export it again") from None
        c: np.ndarray = np.asarray(contrib, dtype=np.float64)
        b: np.ndarray = np.asarray(bias, dtype=np.float64)
        o: np.ndarray = np.asarray(out, dtype=np.float64)
        if not classification:  # one value per row: drop the class axis
            c, b, o = c[:, :, 0], b.reshape(()), o[:, 0]
        return Explanation(features=tuple(self.schema.names), classes=self.schema.classes if classification else None,
                           contributions=c, bias=b, output=o, method=self.method)


_lock = threading.Lock()
# one explainer per loaded model, made on first use and gone with the model
_explainers: weakref.WeakKeyDictionary[Model, Explainer] = weakref.WeakKeyDictionary()


def explainer_for(model: Model) -> Explainer:
    """The model's explainer, made on first use from its bundle's ``explain.onnx`` (hash-checked)."""
    cached = _explainers.get(model)
    if cached is not None:
        return cached
    bundle = model.bundle
    if bundle is None:
        raise BundleError(f"{model.source} is a bare model file: explanations come from a bundle's {EXPLAIN_FILE}")
    info = bundle.manifest.get("explain") or {}
    if not bundle.has(EXPLAIN_FILE):
        why = info.get("reason") if isinstance(info, dict) else None
        raise BundleError(f"{bundle.path}: this model is not explained: {why or 'the bundle has no ' + EXPLAIN_FILE}")
    with _lock:
        cached = _explainers.get(model)
        if cached is None:
            method = str(info.get("method", "")) if isinstance(info, dict) else ""
            cached = Explainer(bundle.read(EXPLAIN_FILE), model.schema, source=bundle.path / EXPLAIN_FILE,
                               method=method)
            _explainers[model] = cached
    return cached


def explain(model: Model, rows: Any) -> Explanation:
    return explainer_for(model).explain(rows)
