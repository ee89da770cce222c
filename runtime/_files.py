"""Reading rows from files for prediction, with no pandas: CSV and JSON Lines.

Columns other than the model's fields (an id, the target) are ignored unless
``keep`` carries them through to the output.

CSV cells are text; each is turned into the schema's kind here (an empty cell,
``NA`` or ``NaN`` is missing), and a cell that cannot be read names its file,
row and field. JSONL values are passed through as they are, so the runtime's
own checks apply.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ._errors import SchemaError
from ._schema import Schema

__all__ = ["read_rows", "MISSING_TEXT"]

MISSING_TEXT = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"})


def _cell(text: str, kind: str, where: str, row: int, name: str) -> Any:
    if text in MISSING_TEXT:
        return None
    if kind == "category":
        return text
    if kind == "boolean":
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise SchemaError(f"{where}row {row}, field {name!r}: expected a boolean, got {text!r} (str)",
                          row=row, field=name)
    try:
        return float(text)
    except ValueError:
        raise SchemaError(f"{where}row {row}, field {name!r}: expected a number, got {text!r} (str)",
                          row=row, field=name) from None


def read_rows(path: Path, schema: Schema, *, keep: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]],
                                                                                     dict[str, list[Any]]]:
    """(rows for the model, carried columns): rows hold exactly the schema's fields."""
    where = f"{path}: "
    kinds = {f.name: f.kind for f in schema.features}
    carried: dict[str, list[Any]] = {k: [] for k in keep}
    rows: list[dict[str, Any]] = []
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            for name in kinds:
                if name not in header:
                    raise SchemaError(f"{where}missing column {name!r} (the model takes {', '.join(kinds)})",
                                      field=name)
            for k in keep:
                if k not in header:
                    raise SchemaError(f"{where}--keep column {k!r} is not in the file", field=k)
            for i, rec in enumerate(reader):
                rows.append({n: _cell(rec[n] or "", kinds[n], where, i, n) for n in kinds})
                for k in keep:
                    carried[k].append(rec[k])
    elif suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(x for x in fh if x.strip()):
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SchemaError(f"{where}row {i}: not valid JSON ({exc.msg})", row=i) from None
                if not isinstance(rec, dict):
                    raise SchemaError(f"{where}row {i}: expected a JSON object, got {type(rec).__name__}", row=i)
                for k in keep:
                    if k not in rec:
                        raise SchemaError(f"{where}row {i}: --keep column {k!r} is missing", row=i, field=k)
                    carried[k].append(rec[k])
                # like CSV: the schema's fields are read, other keys (ids, the target) are left alone
                rows.append({n: rec[n] for n in kinds if n in rec})
    else:
        raise SchemaError(f"{path}: unsupported input format {suffix!r}; use .csv or .jsonl")
    return rows, carried
