"""What every target's converter walk shares: column selection and the errors that name a step.

The ONNX and Core ML converters each keep their own table (DESIGN.md: one explicit
table per target); how a step is looked up, how its failure is reported and how a
ColumnTransformer's column spec is read are the same for both, and live here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

__all__ = ["resolve_columns", "unsupported", "run_converter"]

E = TypeVar("E", bound=Exception)


def resolve_columns(columns: Any, names: list[str], n: int) -> list[int]:
    """A fitted ColumnTransformer's column spec (names, indices, a slice or a mask) as input indices."""
    if isinstance(columns, slice):
        if isinstance(columns.start, str) or isinstance(columns.stop, str):  # by name: both ends included
            start = names.index(columns.start) if columns.start is not None else 0
            stop = names.index(columns.stop) + 1 if columns.stop is not None else n
            return list(range(start, stop))[::columns.step or 1]
        return list(range(n))[columns]
    if isinstance(columns, str | int):
        columns = [columns]
    cols = list(np.asarray(columns).tolist()) if not isinstance(columns, list) else columns
    if cols and isinstance(cols[0], bool):
        return [i for i, keep in enumerate(cols) if keep]
    return [names.index(c) if isinstance(c, str) else int(c) for c in cols]


def unsupported(name: str, step: Any, *, error: type[E], target: str, refused: dict[type, str],
                supported: list[str], keyword: str) -> E:
    """The error for a step the table has no converter for: what is supported and how to add one."""
    cls = type(step).__name__
    where = "" if target == "ONNX" else f" to {target}"
    if type(step) in refused:
        return error(f"step {name!r} ({cls}) cannot be exported{where}: {refused[type(step)]}.")
    return error(
        f"step {name!r} ({cls}) has no {target} converter. Supported: {', '.join(supported)}.\n"
        f"  Register one with skedge.exporter.register_converter({cls}, {keyword}=...); see README, \"Custom steps\"."
    )


def run_converter(convert: Callable[..., Any], args: tuple[Any, ...], *, name: str, step: Any, error: type[E],
                  target: str) -> Any:
    """Call a converter; whatever goes wrong inside becomes ``error`` naming the step."""
    where = "" if target == "ONNX" else f" to {target}"
    try:
        return convert(*args)
    except Exception as exc:
        if isinstance(exc, error) and str(exc).startswith("step "):
            raise
        if not isinstance(exc, error | ValueError | TypeError | AttributeError | KeyError | IndexError):
            raise
        raise error(f"step {name!r} ({type(step).__name__}) cannot be exported{where}: {exc}") from exc
