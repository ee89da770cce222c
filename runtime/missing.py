"""What "missing" means, written once for the trainer, the exporter, the runtime and the JavaScript page.

Two places, two rules, because sklearn has two:

* **In files** (CSV cells are text) the spellings in ``MISSING_TEXT`` are missing: exactly pandas' default
  NA strings, so a file is read at predict time the way ``pandas.read_csv`` read it for training. The
  trainer reads with ``keep_default_na=False, na_values=MISSING_TEXT``; the runtime's CSV reader and
  ``mobile_demo/skedge-core.js`` use the same list (a test holds all three to pandas' own set).
* **In rows given to the API** (dicts, DataFrames, JSON values) only ``None``, NaN and pandas' NA/NaT are
  missing. ``""``, ``" "`` and every other string are strings, answered as sklearn answers them: a known
  category, an unseen one, or a refusal under ``handle_unknown="error"``.

On the ONNX and Core ML side a category input is a string tensor, which has no "missing". A missing
category is fed as ``MISSING_CATEGORY``, U+FFFF: a Unicode noncharacter, reserved by the standard for a
program's internal use and never assigned to a character, so no real category spells it. It is not the
empty string (a real value) and not NUL (onnxruntime-web passes strings to C as NUL-terminated, so
``"\\0"`` would arrive as ``""``). The schema records it (``missing_category`` in ``skedge.schema``), so an app
that feeds a bare ``.onnx`` reads it from the model; the runtime refuses the literal value in a row.

A number given for a category field is spelled by ``category_text``: the one rule the trainer applies to a
numeric column declared a category and the runtime applies to a number in a row, so ``101``, ``101.0`` and
``"101"`` are one category, ``"101"``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

__all__ = ["MISSING_TEXT", "MISSING_CATEGORY", "is_missing", "category_text", "number_text_category", "is_number_text"]

# pandas' default NA strings (pandas._libs.parsers.STR_NA_VALUES, pandas 2.x and 3.x); tests compare.
MISSING_TEXT: frozenset[str] = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})

MISSING_CATEGORY = "\uffff"


def _is_pandas_na(value: Any) -> bool:
    # pd.NA / pd.NaT without importing pandas: they reach us from nullable dtypes and to_dict("records")
    t = type(value)
    return t.__name__ in ("NAType", "NaTType") and t.__module__.startswith("pandas")


def is_missing(value: Any) -> bool:
    """True for a missing value in a row: None, NaN (float or numpy), pandas' NA and NaT. Never a string."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return _is_pandas_na(value)


def category_text(value: Any) -> str:
    """The spelling of a category value: a string is itself; a number is its shortest exact text, with a
    whole number written without a decimal point (``101.0`` and ``np.int64(101)`` are ``"101"``).

    ``TypeError`` for anything else (bools, dates, containers): a category is text, and which text a
    date would be is a guess.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"a boolean ({value!r}) is not a category")
    if isinstance(value, np.datetime64 | np.timedelta64):  # numpy integers in disguise
        raise TypeError(f"a {type(value).__name__} is not a category")
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isfinite(x) and x.is_integer():
            return str(int(x))
        return repr(x)  # shortest round-trip text; 'inf' / '-inf' as pandas' str() writes them too
    raise TypeError(f"a {type(value).__name__} is not a category")


# What pandas' CSV parser reads as a number (decimal, optional exponent; inf spelled as pandas does)
# ASCII only (re.ASCII): Python's \d also takes other scripts' digits, which pandas reads as text
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|Inf|INF|infinity|Infinity)\s*",
                          re.ASCII)


def is_number_text(text: str) -> bool:
    """A CSV cell pandas' parser reads as a number: ASCII digits, a point, an exponent, inf. Python's
    ``float`` takes more (``1_000``, other scripts' digits, ``NAN``): pandas keeps those as text, so must we."""
    return _NUMBER_TEXT.fullmatch(text) is not None


def number_text_category(text: str, known: frozenset[str] | None) -> str:
    """A CSV cell of a category field, spelled as the trainer spelled it.

    pandas reads a column whose cells are all numbers as numbers, and the trainer then spells them with
    ``category_text`` (the cell ``101.0`` became the category ``"101"``); a cell in a column that also holds
    words stayed text. So: a known category as it is, else a number's cell in ``category_text``'s spelling.
    """
    if (known is not None and text in known) or not _NUMBER_TEXT.fullmatch(text):
        return text
    stripped = text.strip()
    try:
        return category_text(int(stripped)) if stripped.lstrip("+-").isdigit() else category_text(float(stripped))
    except (ValueError, OverflowError):
        return text
