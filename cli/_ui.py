"""Terminal output: steps with timings on a terminal, quiet otherwise; errors and warnings as one line."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

__all__ = ["step", "say", "fail", "warn", "is_tty", "bold", "green", "red", "yellow", "describe_failure",
           "pipe_closed", "stdout_closed", "warnings_as_lines", "MAX_MESSAGE_CHARS"]

# what a failure may print: a message built from hostile input (a config, a data file) stays readable
MAX_MESSAGE_CHARS = 2000
MAX_LINE_CHARS = 1000
MAX_LINES = 12


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


def yellow(text: str) -> str:
    return _color("33", text)


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


def _capped(text: str) -> str:
    lines = [ln if len(ln) <= MAX_LINE_CHARS else ln[:MAX_LINE_CHARS - 1] + "…" for ln in text.splitlines() or [""]]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES - 1], f"… and {len(lines) - MAX_LINES + 1} more lines"]
    out = "\n".join(lines)
    return out if len(out) <= MAX_MESSAGE_CHARS else out[:MAX_MESSAGE_CHARS - 1] + "…"


def fail(text: str) -> int:
    print(f"{red('error')}: {_capped(text)}", file=sys.stderr)
    return 1


def warn(text: str) -> None:
    print(f"{yellow('warning')}: {_capped(text)}", file=sys.stderr)


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Python warnings (skedge's DataWarning, sklearn's ConvergenceWarning) as ``warning: …`` lines, not as
    ``file:line: Category: …`` with the source line under it."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        warn(" ".join(str(message).split()) if category.__module__.startswith("skedge")
             else f"{category.__name__}: {' '.join(str(message).split())}")

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


# the verb of each command, for "… while training: …"
_DOING = {"train": "training", "export": "exporting", "verify": "verifying", "predict": "predicting",
          "inspect": "reading the bundle", "demo": "serving the demo", "serve": "serving the model"}
_WHAT_TO_DO = {
    "train": "check the data file and model.params against what the estimator accepts",
    "export": "check that the sample has the columns and kinds the pipeline was fitted on",
    "verify": "the bundle may be damaged or made by another skedge version: export it again",
    "predict": "check the input against the bundle's schema (skedge inspect BUNDLE)",
}
# the libraries whose exceptions mean "this input, in that library": named in the message
_LIBRARIES = {"sklearn": "scikit-learn", "numpy": "numpy", "scipy": "scipy", "pandas": "pandas",
              "onnxruntime": "onnxruntime", "onnx": "onnx", "coremltools": "coremltools", "skops": "skops",
              "pyarrow": "pyarrow", "skl2onnx": "skl2onnx", "onnxmltools": "onnxmltools", "dask": "dask",
              "distributed": "dask", "joblib": "joblib"}


def _library(tb: TracebackType | None) -> str | None:
    """The library skedge called into last, where the exception came from: sklearn's fit rather than the numpy
    function deep inside it that raised."""
    found = None
    while tb is not None:
        top = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
        if top == "skedge":
            found = None  # skedge code nearer the failure: the library it called next is the one to name
        elif found is None:
            found = _LIBRARIES.get(top)
        tb = tb.tb_next
    return found


def describe_failure(exc: BaseException, command: str | None) -> str:
    """One line for any exception: skedge's own as they are, a library's with where it came from and what to do."""
    from skedge.runtime import SkedgeError

    if isinstance(exc, SkedgeError | OSError | ImportError):
        return str(exc) or type(exc).__name__
    doing = _DOING.get(command or "", command or "running")
    if isinstance(exc, MemoryError):
        return (f"out of memory while {doing}: use a smaller model (model.params), fewer rows or fewer features "
                "(--debug shows where)")
    if isinstance(exc, RecursionError):
        return f"an input is nested too deeply to read while {doing} (--debug shows which)"
    text = " ".join(str(exc).split()).rstrip(".") or "(no message)"
    if len(text) > 300:
        text = text[:299] + "…"
    lib = _library(exc.__traceback__)
    if lib is None:
        return (f"unexpected {type(exc).__name__} while {doing}: {text}. This is a skedge bug: please report it "
                "with the output of --debug")
    todo = _WHAT_TO_DO.get(command or "", "check the inputs of the command")
    return f"{lib} failed while {doing}: {type(exc).__name__}: {text}. What to do: {todo} (--debug shows the traceback)"


def stdout_closed() -> bool:
    """Whether the reader of stdout went away (poll reports POLLERR on a pipe's write end); False when unknown.

    A BrokenPipeError from elsewhere (a subprocess, a socket) is a failure like any other."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll (Windows), or not a real file descriptor
        return False


def pipe_closed() -> int:
    """The reader of stdout stopped reading (``skedge … | head -1``): not an error, nothing to print.

    stdout is pointed at /dev/null so the interpreter's last flush is quiet too, and the exit status is the one
    a command killed by SIGPIPE has (128 + 13), as ``cat`` or ``git log`` give under ``| head``.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 141
