"""A value nested thousands deep is the caller's SchemaError, not a RecursionError: the runtime's message took
repr() of it (the hostile trial), and a live model counts any error but SchemaError as a failure of the model,
towards rolling it back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from skedge.runtime import SchemaError, load


def _deep(n: int) -> list[Any]:
    top: list[Any] = []
    cur = top
    for _ in range(n):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return top


@pytest.mark.parametrize("field", ["bill_length_mm", "island"])
def test_a_deeply_nested_value_is_a_schema_error_naming_row_and_field(penguins_bundle: Path, field: str) -> None:
    model = load(penguins_bundle)
    row = json.loads((penguins_bundle / "golden.json").read_text())["rows"][0]
    row = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
    expected = "a finite number" if field == "bill_length_mm" else "a string"
    for rows in ({**row, field: _deep(5000)}, [row, {**row, field: _deep(5000)}]):
        with pytest.raises(SchemaError) as err:
            model.predict(rows)
        at = 0 if isinstance(rows, dict) else 1
        assert str(err.value) == f"row {at}, field {field!r}: expected {expected}, got [[[[[[[...]]]]]]] (list)"
        assert (err.value.row, err.value.field) == (at, field)
