"""Loading a user's fitted pipeline from a skops file: no pickle, only types we trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skedge.runtime._errors import ExportError

__all__ = ["load_pipeline"]


def load_pipeline(path: Path, *, trusted: tuple[str, ...] = ()) -> Any:
    import skops.io as sio

    if path.suffix != ".skops":
        raise ExportError(f"{path}: expected a .skops file (skops.io.dump); pickle files are never loaded")
    try:
        unknown = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises zipfile/json errors for a corrupt file
        raise ExportError(f"{path}: not a readable skops file ({exc})") from None
    allowed = {"skedge.trainer.features.OutlierClipper", *trusted}
    # types skops itself does not trust by default but that are plain sklearn/numpy data
    refused = [t for t in unknown if t not in allowed and not t.startswith(("sklearn.", "numpy."))]
    if refused:
        raise ExportError(f"{path} contains types skedge will not load without --trust: {', '.join(refused)}")
    return sio.load(path, trusted=list(unknown))
