"""coremltools' generated protobuf modules, imported without coremltools' noise.

Importing anything under ``coremltools`` runs its package ``__init__``, which on
Linux logs eight "Failed to load _MLModelProxy ..." lines (no native Core ML
here) and, with scikit-learn newer than 1.5.1, one more about disabling its own
sklearn converter. None of that concerns skedge (we use the protobuf messages
only), so the import runs with coremltools' loggers raised to ERROR and Python
warnings suppressed; both are restored afterwards. Once imported, later calls
cost nothing.
"""

from __future__ import annotations

import logging
import warnings
from types import ModuleType
from typing import Any

__all__ = ["proto", "quiet_import"]

_CACHE: dict[str, ModuleType] = {}


def quiet_import(module: str) -> ModuleType:
    """``importlib.import_module(module)`` with coremltools' import-time logging and warnings silenced."""
    if module in _CACHE:
        return _CACHE[module]
    import importlib

    root = logging.getLogger("coremltools")
    saved = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(module)
    finally:
        root.setLevel(saved)
    _CACHE[module] = mod
    return mod


class _Proto:
    """Attribute access to ``coremltools.proto.<Name>_pb2`` modules: ``proto().Model_pb2``."""

    def __getattr__(self, name: str) -> Any:
        if not name.endswith("_pb2"):
            raise AttributeError(name)
        return quiet_import(f"coremltools.proto.{name}")


_PROTO = _Proto()


def proto() -> Any:
    return _PROTO
