"""What every target's converter walk shares: column selection and the errors that name a step.

The ONNX and Core ML converters each keep their own table (DESIGN.md: one explicit
table per target); how a step is looked up, how its failure is reported and how a
ColumnTransformer's column spec is read are the same for both, and live here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

__all__ = ["resolve_columns", "unsupported", "run_converter", "pipeline_steps", "describe_step", "public_name"]

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


def pipeline_steps(pipeline: Any) -> list[tuple[str, Any]]:
    """The (name, step) pairs a converter walks; a bare estimator is named by its class, as the user wrote it."""
    if hasattr(pipeline, "steps"):
        return list(pipeline.steps)
    return [(type(pipeline).__name__, pipeline)]


def describe_step(name: str, step: Any) -> str:
    """How a message names a step: "step 'svd' (TruncatedSVD)", or just "SVC" for a bare estimator."""
    cls = type(step).__name__
    return cls if name == cls else f"step {name!r} ({cls})"


def _reason(refused: Mapping[Any, str], step: Any) -> str | None:
    cls = type(step)
    top = cls.__module__.split(".")[0]
    for key in (cls, f"{cls.__module__}.{cls.__qualname__}", public_name(cls), f"{top}.{cls.__qualname__}"):
        if key in refused:
            return refused[key]
    return None


def public_name(cls: type) -> str:
    """``sklearn.decomposition._pca.PCA`` -> ``sklearn.decomposition.PCA``: the path a user imports it by."""
    parts = []
    for part in cls.__module__.split("."):
        if part.startswith("_"):
            break
        parts.append(part)
    return ".".join([*parts, cls.__qualname__])


def unsupported(name: str, step: Any, *, error: type[E], target: str, refused: Mapping[Any, str],
                supported: list[str], keyword: str) -> E:
    """The error for a step the table has no converter for: why, and the ways out (the list of what is supported
    is one command away, not 700 characters on this line)."""
    cls = type(step).__name__
    where = "" if target == "ONNX" else f" to {target}"
    who = describe_step(name, step)
    reason = _reason(refused, step)
    if reason is not None:
        return _marked(error(f"{who} cannot be exported{where}: {reason}.\n  Replace the step, or register a "
                             f"converter: skedge.exporter.register_converter({cls}, {keyword}=...); see README, "
                             "\"Custom steps\"."))
    return _marked(error(
        f"{who} has no {target} converter. Supported: {len(supported)} classes, listed by "
        f"`skedge supported --target {keyword}`.\n"
        f"  Register one with skedge.exporter.register_converter({cls}, {keyword}=...); see README, \"Custom steps\"."
    ))


def _marked(exc: E) -> E:
    # an error that already names its step passes through the outer steps' wrappers unchanged
    exc._skedge_step = True  # type: ignore[attr-defined]
    return exc


def run_converter(convert: Callable[..., Any], args: tuple[Any, ...], *, name: str, step: Any, error: type[E],
                  target: str) -> Any:
    """Call a converter; whatever goes wrong inside becomes ``error`` naming the step."""
    where = "" if target == "ONNX" else f" to {target}"
    try:
        return convert(*args)
    except Exception as exc:
        if isinstance(exc, error) and (getattr(exc, "_skedge_step", False) or str(exc).startswith("step ")):
            raise  # already names the (inner) step it is about
        if not isinstance(exc, error | ValueError | TypeError | AttributeError | KeyError | IndexError):
            raise
        raise _marked(error(f"{describe_step(name, step)} cannot be exported{where}: {exc}")) from exc
