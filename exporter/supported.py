"""Who converts each class, per target: the table ``skedge supported`` prints.

ONNX: skedge's own converter, the field's (skl2onnx / onnxmltools, exporter/onnx/field.py), or refused with the
reason. Core ML: skedge's own converter, or unavailable with the reason (a bundle is then written without
``model.mlmodel``; the ONNX model is not affected). Every public scikit-learn estimator is listed, so a class
missing from the converter tables shows as refused rather than not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Entry", "supported", "TARGETS"]

TARGETS = ("onnx", "coreml")


@dataclass(frozen=True)
class Entry:
    name: str  # the public import path, e.g. sklearn.decomposition.PCA
    who: str  # "skedge", "skl2onnx", "onnxmltools", "refused" (ONNX) or "unavailable" (Core ML)
    note: str = ""


def _sklearn_classes() -> list[type]:
    import warnings

    from sklearn.utils import all_estimators

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [cls for _, cls in all_estimators()]


def _path(key: Any) -> str:
    from .onnx._table import public_name

    return key if isinstance(key, str) else public_name(key)


def supported(target: str = "onnx") -> list[Entry]:
    """Every class skedge knows something about for ``target``, sorted by public path."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: one of {', '.join(TARGETS)}")
    from .onnx._table import FIELD, ONNX_CONVERTERS, REFUSED, public_name, who_converts

    names: dict[str, Entry] = {}
    if target == "onnx":
        for cls in _sklearn_classes():
            who, note = who_converts(cls)
            names[public_name(cls)] = Entry(public_name(cls), who, note)
        for key in [*ONNX_CONVERTERS, *REFUSED, *FIELD]:
            path = _path(key)
            if path in names:
                continue
            if key in ONNX_CONVERTERS:
                names[path] = Entry(path, "skedge")
            elif key in REFUSED:
                names[path] = Entry(path, "refused", REFUSED[key])
            else:
                names[path] = Entry(path, FIELD[path])
        return sorted(names.values(), key=lambda e: e.name)

    from .coreml._table import COREML_CONVERTERS
    from .coreml._table import REFUSED as COREML_REFUSED

    def coreml_entry(path: str, key: Any) -> Entry:
        if key in COREML_CONVERTERS or path in COREML_CONVERTERS:
            return Entry(path, "skedge")
        if key in COREML_REFUSED:
            return Entry(path, "unavailable", COREML_REFUSED[key])
        return Entry(path, "unavailable", "no Core ML converter: the bundle is written without model.mlmodel")

    for cls in _sklearn_classes():
        names[public_name(cls)] = coreml_entry(public_name(cls), cls)
    for key in COREML_CONVERTERS:
        path = _path(key)
        names.setdefault(path, Entry(path, "skedge"))
    return sorted(names.values(), key=lambda e: e.name)
