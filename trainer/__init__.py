"""skedge.trainer: batch training from a validated config and a data file.

    from skedge.trainer import train
    result = train("examples/penguins.toml", out="models")

Needs the ``train`` extra.
"""

from __future__ import annotations

try:
    import pandas as _pandas  # noqa: F401
    import pydantic as _pydantic  # noqa: F401
    import sklearn as _sklearn  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in the runtime-only venv test
    raise ImportError(
        f"skedge.trainer needs the 'train' extra ({_exc.name} is missing): pip install 'skedge[train]'"
    ) from _exc

from .checks import DataWarning
from .config import Config, config_json_schema, load_config
from .estimators import REGISTRY
from .features import OutlierClipper, build_preprocessor
from .train import TrainResult, fit, train

__all__ = ["train", "fit", "TrainResult", "Config", "load_config", "config_json_schema", "REGISTRY",
           "OutlierClipper", "build_preprocessor", "DataWarning"]
