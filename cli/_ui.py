"""Terminal output: steps with timings on a terminal, quiet otherwise; errors as one line."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["step", "say", "fail", "is_tty", "bold", "green", "red"]


def is_tty() -> bool:
    return sys.stderr.isatty()


def _color(code: str, text: str) -> str:
    return f"\033[{code}m{text}\033[0m" if is_tty() else text


def bold(text: str) -> str:
    return _color("1", text)


def green(text: str) -> str:
    return _color("32", text)


def red(text: str) -> str:
    return _color("31", text)


@contextmanager
def step(label: str) -> Iterator[None]:
    """Show ``label …`` while a step runs and its time when it ends (terminal only)."""
    if not is_tty():
        yield
        return
    sys.stderr.write(f"  {label} …")
    sys.stderr.flush()
    t0 = time.perf_counter()
    try:
        yield
    except BaseException:
        sys.stderr.write(f"\r  {red('✗')} {label}\n")
        raise
    sys.stderr.write(f"\r  {green('✓')} {label} ({time.perf_counter() - t0:.1f}s)\n")


def say(text: str) -> None:
    print(text)


def fail(text: str) -> int:
    print(f"{red('error')}: {text}", file=sys.stderr)
    return 1
