"""Reading rows to score from files and writing predictions back: CSV, JSON Lines, Parquet.

Columns other than the model's fields (an id, the target) are ignored unless
``keep`` carries them through to the output.

CSV cells are text; each is turned into the schema's kind here: a cell spelled as
one of pandas' NA strings (``skedge.runtime.missing.MISSING_TEXT``: empty, ``NA``,
``#N/A``, ``<NA>``, ...) is missing, as ``pandas.read_csv`` read it for training, and
a category cell holding a number is spelled as the trainer spelled it. A row with
too few or too many cells, a repeated header name, a cell that cannot be read:
``SchemaError`` naming the file, the row and the field. JSONL values are passed
through as they are, so the runtime's own checks apply. Parquet columns arrive typed, through pyarrow, which is
imported only when a Parquet file is read or written: CSV and JSONL need
nothing beyond the runtime.

``iter_chunks`` streams a file in chunks of ``BATCH_ROWS`` rows, so a file
larger than memory can be scored; ``ColumnWriter`` writes the output the same
way, to a temporary name that becomes the destination only when it is complete.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from ._errors import DataError, SchemaError, SkedgeError
from ._schema import Schema
from .missing import MISSING_TEXT, is_number_text, number_text_category

__all__ = [
    "MISSING_TEXT",
    "FORMATS",
    "BATCH_ROWS",
    "Chunk",
    "file_format",
    "find_inputs",
    "iter_chunks",
    "ColumnWriter",
]

# file suffix -> format, for inputs and outputs alike
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Rows per chunk: big enough that onnxruntime's per-call cost vanishes (< 1%),
# small enough that a chunk of a wide table stays in the tens of MB.
BATCH_ROWS = 65_536
PYARROW_HINT = "pip install pyarrow (or pip install 'skedge[dask]')"



def _cell(text: str, kind: str, where: str, row: int, name: str, known: frozenset[str] | None = None) -> Any:
    if text in MISSING_TEXT:
        return None
    if kind == "category":
        return number_text_category(text, known)
    if kind == "boolean":
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise SchemaError(f"{where}row {row}, field {name!r}: expected a boolean, got {text!r} (str)",
                          row=row, field=name)
    try:
        if is_number_text(text):
            return float(text)
    except ValueError:
        pass
    raise SchemaError(f"{where}row {row}, field {name!r}: expected a number, got {text!r} (str)",
                      row=row, field=name)


def file_format(path: Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the suffix; ``DataError`` for anything else."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported format {path.suffix!r}; use .csv, .jsonl or .parquet")
    return fmt


def find_inputs(spec: str | os.PathLike[str]) -> list[Path]:
    """The files ``spec`` names: one file, a directory's data files, or a glob; sorted by name.

    A directory contributes its ``.parquet``, ``.csv`` and ``.jsonl`` files (not
    its subdirectories); names starting with ``.`` or ``_`` are skipped, as
    Spark and Dask write markers such as ``_SUCCESS`` and ``_metadata`` there.
    """
    text = os.fspath(spec)
    p = Path(text)
    if p.is_dir():
        found = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in FORMATS
                 and not f.name.startswith((".", "_"))]
        if not found:
            raise FileNotFoundError(f"{p} holds no .parquet, .csv or .jsonl files")
    elif p.is_file():
        file_format(p)
        return [p]
    elif glob.has_magic(text):
        found = [Path(f) for f in glob.glob(text) if Path(f).is_file()]
        if not found:
            raise FileNotFoundError(f"no files match {text!r}")
        for f in found:
            file_format(f)
    else:
        raise FileNotFoundError(f"{p} does not exist")
    return sorted(found, key=lambda f: (f.name, str(f)))


# -- reading in chunks --------------------------------------------------------

@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of one file: the model's fields and the carried columns, as columns."""

    features: dict[str, Any]
    carried: dict[str, Any]
    offset: int  # the file row number of the chunk's first row (0-based, like the runtime's "row N")
    n: int


def iter_chunks(path: Path, schema: Schema, *, keep: tuple[str, ...] = (),
                batch_rows: int = BATCH_ROWS) -> Iterator[Chunk]:
    """Stream ``path`` in chunks of at most ``batch_rows`` rows; always at least one chunk (maybe empty).

    A file that cannot be read raises ``DataError`` naming it; a cell that does not
    fit, ``SchemaError`` naming the file, the row and the field.
    """
    fmt = file_format(path)
    reader = {"csv": _csv_chunks, "jsonl": _jsonl_chunks, "parquet": _parquet_chunks}[fmt]
    try:
        yield from reader(path, schema, keep, batch_rows)
    except SkedgeError:
        raise
    except (ValueError, OSError, csv.Error) as exc:
        # FileNotFoundError and friends keep their type: the CLI names them as they are
        if isinstance(exc, OSError) and not _is_arrow_error(exc):
            raise
        raise DataError(f"{path}: cannot be read as {fmt} ({_first_line(exc)})") from None


def _is_arrow_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("pyarrow")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _csv_chunks(path: Path, schema: Schema, keep: tuple[str, ...], batch_rows: int) -> Iterator[Chunk]:
    where = f"{path}: "
    kinds = {f.name: f.kind for f in schema.features}
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark that would otherwise stick to the first name
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        index = {name: i for i, name in enumerate(header)}
        if len(index) != len(header):  # which copy is the data? neither: say so
            dup = next(name for name in header if header.count(name) > 1)
            raise SchemaError(f"{where}the header (line 1), field {dup!r}: the column is named twice", field=dup)
        for name in kinds:
            if name not in index:
                hint = ""
                if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
                    sep = next(s for s in ";\t|" if s in header[0])
                    hint = f"; the header looks separated by {sep!r}: skedge reads comma-separated CSV"
                raise SchemaError(f"{where}missing column {name!r} (the model takes {', '.join(kinds)}){hint}",
                                  field=name)
        for k in keep:
            if k not in index:
                raise SchemaError(f"{where}--keep column {k!r} is not in the file", field=k)
        width = len(header)
        known = {f.name: frozenset(f.categories) if f.categories is not None else None for f in schema.features}
        feats: dict[str, list[Any]] = {n: [] for n in kinds}
        carried: dict[str, list[Any]] = {k: [] for k in keep}
        offset = 0
        # blank lines are not rows (as pandas reads them): rows are counted without them
        for i, rec in enumerate(r for r in reader if r):
            if len(rec) != width:  # cells out of place: which value belongs to which field is a guess
                _bad_width(where, i, rec, header)
            for n, kind in kinds.items():
                feats[n].append(_cell(rec[index[n]], kind, where, i, n, known[n]))
            for k in keep:
                carried[k].append(rec[index[k]])
            if i + 1 - offset == batch_rows:
                yield Chunk(feats, carried, offset, batch_rows)
                feats, carried, offset = {n: [] for n in kinds}, {k: [] for k in keep}, i + 1
        n_rows = len(next(iter(feats.values()))) if feats else 0
        if n_rows or offset == 0:
            yield Chunk(feats, carried, offset, n_rows)


def _bad_width(where: str, i: int, rec: list[str], header: list[str]) -> None:
    if len(rec) < len(header):
        name = header[len(rec)]
        raise SchemaError(f"{where}row {i}, field {name!r}: the row has {len(rec)} cells, the header "
                          f"{len(header)}: the cells from {name!r} on are missing", row=i, field=name)
    name = header[-1]
    raise SchemaError(f"{where}row {i}, field {name!r}: the row has {len(rec)} cells, the header {len(header)}: "
                      f"{len(rec) - len(header)} cell(s) after the last column", row=i, field=name)


def _deep_field(line: str, limit: int = 100) -> str | None:
    """The top-level key whose value nests deeper than ``limit`` (a line json refused as too deep)."""
    depth, key, in_str, esc, start = 0, None, False, False, 0
    for j, ch in enumerate(line):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                if depth == 1:
                    key = line[start:j + 1]
        elif ch == '"':
            in_str, start = True, j
        elif ch in "[{":
            depth += 1
            if depth > limit:
                try:
                    return str(json.loads(key)) if key is not None else None
                except ValueError:
                    return None
        elif ch in "]}":
            depth -= 1
    return None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: json keeps the last of a repeated key without a word."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _jsonl_chunks(path: Path, schema: Schema, keep: tuple[str, ...], batch_rows: int) -> Iterator[Chunk]:
    where = f"{path}: "
    names = schema.names
    feats: dict[str, list[Any]] = {n: [] for n in names}
    carried: dict[str, list[Any]] = {k: [] for k in keep}
    offset = n_rows = 0
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(x for x in fh if x.strip()):
            try:
                rec = json.loads(line, object_pairs_hook=_unique_keys)
            except _DuplicateKey as dup:
                raise SchemaError(f"{where}row {i}, field {dup.key!r}: the field is named twice in the row",
                                  row=i, field=dup.key) from None
            except json.JSONDecodeError as exc:
                raise SchemaError(f"{where}row {i}: not valid JSON ({exc.msg})", row=i) from None
            except RecursionError:  # a hostile line, e.g. [[[[...]]]] 2,000 deep: one line, not a traceback
                deep = _deep_field(line)
                at = f", field {deep!r}" if deep is not None else ""
                raise SchemaError(f"{where}row {i}{at}: the JSON nests too deeply to be a row (a field's value is "
                                  "a number, a string, a boolean or null)", row=i, field=deep) from None
            if not isinstance(rec, dict):
                raise SchemaError(f"{where}row {i}: expected a JSON object, got {type(rec).__name__}", row=i)
            for n in names:
                if n not in rec:
                    raise SchemaError(f"{where}row {i}, field {n!r}: missing (expected {len(names)} fields: "
                                      f"{', '.join(names)})", row=i, field=n)
                feats[n].append(rec[n])
            for k in keep:
                if k not in rec:
                    raise SchemaError(f"{where}row {i}: --keep column {k!r} is missing", row=i, field=k)
                carried[k].append(rec[k])
            n_rows += 1
            if n_rows == batch_rows:
                yield Chunk(feats, carried, offset, n_rows)
                feats, carried = {n: [] for n in names}, {k: [] for k in keep}
                offset, n_rows = i + 1, 0
    if n_rows or offset == 0:
        yield Chunk(feats, carried, offset, n_rows)


def pyarrow_modules() -> tuple[ModuleType, ModuleType]:
    """(pyarrow, pyarrow.parquet), or an ImportError that says how to install them."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError(f"reading and writing Parquet needs pyarrow: {PYARROW_HINT}") from None
    return pyarrow, pyarrow.parquet


def _parquet_chunks(path: Path, schema: Schema, keep: tuple[str, ...], batch_rows: int) -> Iterator[Chunk]:
    _, pq = pyarrow_modules()
    where = f"{path}: "
    pf = pq.ParquetFile(path)
    present = set(pf.schema_arrow.names)
    for name in schema.names:
        if name not in present:
            raise SchemaError(f"{where}missing column {name!r} (the model takes {', '.join(schema.names)})",
                              field=name)
    for k in keep:
        if k not in present:
            raise SchemaError(f"{where}--keep column {k!r} is not in the file", field=k)
    columns = list(dict.fromkeys([*schema.names, *keep]))
    offset = 0
    try:
        for rb in pf.iter_batches(batch_size=batch_rows, columns=columns):
            yield Chunk({n: rb.column(n) for n in schema.names}, {k: rb.column(k) for k in keep},
                        offset, rb.num_rows)
            offset += rb.num_rows
        if offset == 0:  # no rows: one empty chunk, typed like the file, so the output has its columns
            empty = pf.schema_arrow.empty_table()
            yield Chunk({n: empty.column(n) for n in schema.names}, {k: empty.column(k) for k in keep}, 0, 0)
    finally:
        pf.close()


# -- writing ------------------------------------------------------------------

def _pylist(values: Any) -> list[Any]:
    if hasattr(values, "to_pylist"):  # pyarrow
        return list(values.to_pylist())
    if hasattr(values, "tolist"):  # numpy: Python scalars, whose repr round-trips floats exactly
        return list(values.tolist())
    return list(values)


class ColumnWriter:
    """Writes output columns chunk by chunk to ``dest`` as ``fmt``, all or nothing.

    The data goes to a uniquely named ``.partial`` file beside ``dest`` and is
    renamed onto ``dest`` by ``close()``; ``abort()`` (or an exception inside a
    ``with`` block) deletes it. A unique name per writer means two writers of the
    same destination (a task Dask re-ran while the first copy was still going)
    never write into one file.
    """

    def __init__(self, dest: Path, fmt: str) -> None:
        self.dest = dest
        self.fmt = fmt
        self.partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.partial")
        self._stream: TextIO | None = None
        self._text: TextIO | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self._header: list[str] | None = None
        self.rows = 0

    @classmethod
    def to_stream(cls, stream: TextIO, fmt: str) -> ColumnWriter:
        """A writer into an open text stream (CSV or JSONL), e.g. stdout; nothing to rename."""
        if fmt not in ("csv", "jsonl"):
            raise DataError(f"{fmt} cannot be written to a text stream; give an output file")
        writer = cls(Path("<stream>"), fmt)
        writer._stream = writer._text = stream
        return writer

    def __enter__(self) -> ColumnWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, cols: dict[str, Any]) -> None:
        names = list(cols)
        if self._header is None:
            self._header = names
        elif names != self._header:
            raise DataError(f"{self.dest}: a chunk came with columns {names}, expected {self._header}")
        n = len(cols[names[0]]) if names else 0
        if self.fmt == "parquet":
            self._write_parquet(cols)
        elif self.fmt == "csv":
            if self._csv is None:
                if self._text is None:
                    self._text = open(self.partial, "w", newline="", encoding="utf-8")  # noqa: SIM115
                self._csv = csv.writer(self._text, lineterminator="\n")
                self._csv.writerow(names)
            self._csv.writerows(zip(*(_pylist(cols[k]) for k in names), strict=True))
        elif self.fmt == "jsonl":
            if self._text is None:
                self._text = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115
            buf = io.StringIO()
            for values in zip(*(_pylist(cols[k]) for k in names), strict=True):
                buf.write(json.dumps(dict(zip(names, values, strict=True))) + "\n")
            self._text.write(buf.getvalue())
        else:
            raise DataError(f"{self.dest}: unsupported output format {self.fmt!r}")
        self.rows += n

    def _write_parquet(self, cols: dict[str, Any]) -> None:
        pa, pq = pyarrow_modules()
        # numpy arrays convert as they are (object arrays of str become strings); pyarrow
        # columns carried from a Parquet input keep their type
        table = pa.table({k: v if _is_arrow(v) else pa.array(v) for k, v in cols.items()})
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.partial, table.schema)
        elif table.schema != self._parquet.schema:
            # JSONL/CSV carried columns are typed by what each chunk holds (an all-null chunk
            # types as null): hold later chunks to the first chunk's types
            table = table.cast(self._parquet.schema)
        self._parquet.write_table(table)

    def close(self) -> None:
        """Finish the file and move it onto ``dest``."""
        if self._header is None:
            raise DataError(f"{self.dest}: nothing was written")
        if self._stream is not None:
            return
        if self._text is not None:
            self._text.close()
        if self._parquet is not None:
            self._parquet.close()
        os.replace(self.partial, self.dest)

    def abort(self) -> None:
        """Drop what was written; ``dest`` is left as it was."""
        if self._stream is not None:
            return
        for handle in (self._text, self._parquet):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # noqa: BLE001 - already failing; the cleanup below matters more
                pass
        self.partial.unlink(missing_ok=True)


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")
