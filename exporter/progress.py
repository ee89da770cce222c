"""Progress of a long export: one line per stage, to whoever asked for it.

A 2,000-tree forest takes minutes to convert, sweep and check; without a word a user cannot tell a slow
export from a hung one. The exporter calls ``report("…")`` as each stage starts; nothing is printed unless a
caller installed a hook with ``reporting(fn)`` (the CLI does, writing to stderr), so the library stays quiet
for an app. A context variable, so that two exports in two threads report to their own callers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["report", "reporting", "describe_size", "to_stderr"]

_hook: ContextVar[Callable[[str], None] | None] = ContextVar("skedge_export_progress", default=None)


def report(text: str) -> None:
    """Announce that a stage starts (a no-op unless ``reporting`` installed a hook)."""
    hook = _hook.get()
    if hook is not None:
        hook(text)


@contextmanager
def reporting(fn: Callable[[str], None]) -> Iterator[None]:
    """Send this context's stage lines to ``fn``."""
    token = _hook.set(fn)
    try:
        yield
    finally:
        _hook.reset(token)


def to_stderr(text: str) -> None:
    """The CLI's hook: one line per stage on stderr (on a terminal, in place of the running step's line)."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
    sys.stderr.write(f"    {text} …\n")
    sys.stderr.flush()


def describe_size(estimator: Any) -> str:
    """"RandomForestClassifier, 500 trees": what makes a conversion long, in words."""
    name = type(estimator).__name__
    for attr, unit in (("estimators_", "trees"), ("_predictors", "iterations")):
        n = getattr(estimator, attr, None)
        if n is not None and hasattr(n, "__len__"):
            return f"{name}, {len(n):,} {unit}"
    return name
