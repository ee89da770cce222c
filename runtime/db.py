"""Batch predictions into a database: the rows a web application reads, landed all or nothing.

    from skedge.runtime.db import predict_to_db, list_runs, promote_run
    run = predict_to_db("models/penguins/1.0.0", "data/*.parquet", "sqlite:///preds.db", keep=["id"])
    promote_run("sqlite:///preds.db", run.run_id)       # what the view predictions_current shows

Needs the ``db`` extra (SQLAlchemy 2; psycopg 3 for ``postgresql://``), imported
inside the functions: ``import skedge.runtime`` never imports SQLAlchemy.

What lands, per run (one per input set and model):

- ``<table>``: one row per input row, the ``keep`` columns in their own types
  (a whole-number id is a BIGINT), the scorer's columns (``prediction``,
  ``proba_<class>`` or ``score``), then ``run_id``, ``model_name``,
  ``model_version``, ``input_file``, ``input_row``;
- ``prediction_runs``: one row per run: its key, model, input digests, row
  counts, times, status (``running``, ``succeeded``, ``failed``, ``replaced``),
  the pid, host and heartbeat of the process that runs it, and ``promoted``;
- ``<table>_current``: a view of the promoted run's rows (until one is
  promoted, the latest successful run's).

All or nothing: every input file is one partition, scored and written into
``<table>_staging`` in one transaction of its own (on Dask, by the worker that
scored it); the client then moves the run's rows into ``<table>`` in one
transaction, replacing the rows of an earlier successful run with the same key
(model sha256 + input digests + table), so a re-run never duplicates. A run that
fails drops its staging rows and is marked ``failed``; a killed one is shown
``failed`` (its pid is gone, or its heartbeat stopped) and ``repair_runs`` drops
what it staged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from ._batch import BatchScorer, ModelBytes, scorer_for
from ._errors import DataError, EngineError, GateError
from ._files import BATCH_ROWS, find_inputs, iter_chunks
from ._jobs import Progress, check_keep, scored_chunks
from ._stale import pid_alive

__all__ = [
    "RUNS_TABLE",
    "RunInfo",
    "is_db_url",
    "predict_to_db",
    "list_runs",
    "repair_runs",
    "promote_run",
]

RUNS_TABLE = "prediction_runs"
DB_HINT = "pip install 'skedge[db]'"
# The client refreshes its run's heartbeat this often; a run whose heartbeat is older than
# STALE_AFTER (or whose pid is gone, on this host) is dead. Generous: a SQLite writer can hold the lock
# for a whole partition.
HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(minutes=3)
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")  # room for the _staging / _current suffixes in 63 chars
_KEEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_META = ("run_id", "model_name", "model_version", "input_file", "input_row")
_INT_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")


def is_db_url(text: str | os.PathLike[str] | None) -> bool:
    """Whether ``--output`` names a database (``sqlite:///…``, ``postgresql://…``) rather than a file."""
    return isinstance(text, str) and re.match(r"(sqlite|postgresql|postgres)(\+\w+)?://", text) is not None


def _sa() -> Any:
    try:
        import sqlalchemy
    except ImportError:
        raise ImportError(f"writing predictions to a database needs SQLAlchemy: {DB_HINT}") from None
    return sqlalchemy


def _utcnow() -> datetime:
    # naive UTC: SQLite has no time zones, and one convention for both backends keeps ORDER BY honest
    return datetime.now(timezone.utc).replace(tzinfo=None)


# -- the database URL and one engine per process -----------------------------------------

def _normalize_url(url: str) -> str:
    """The URL with a SQLite path made absolute (Dask workers have another cwd) and psycopg 3 as the driver."""
    sa = _sa()
    try:
        u = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise DataError(f"{url!r} is not a database URL (sqlite:///path.db or postgresql://user@host/db)") from None
    if u.drivername.startswith("sqlite"):
        if not u.database or u.database == ":memory:" or u.database.startswith("file:"):
            raise DataError(f"{url}: give a database file (sqlite:///path.db): predictions in memory would be "
                            "gone when the run ends")
        u = u.set(database=str(Path(u.database).absolute()))
    elif u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")  # SQLAlchemy's default is psycopg2; the extra ships psycopg 3
    elif not u.drivername.startswith("postgresql"):
        # mysql:// used to end in "needs the database driver MySQLdb: pip install 'skedge[db]'", which installs none
        raise DataError(f"{_shown(url)}: skedge lands predictions in SQLite (sqlite:///path.db) or PostgreSQL "
                        f"(postgresql://user@host/db), not {u.drivername}")
    return u.render_as_string(hide_password=False)


def _shown(url: str) -> str:
    with contextlib.suppress(Exception):
        return str(_sa().engine.make_url(url).render_as_string(hide_password=True))
    return "<database>"


_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> Any:
    """This process's engine for ``url`` (a Dask worker keeps one across its tasks)."""
    with _ENGINES_LOCK:
        eng = _ENGINES.get(url)
        if eng is None:
            eng = _ENGINES[url] = _make_engine(url)
        return eng


def _make_engine(url: str) -> Any:
    sa = _sa()
    if url.startswith("sqlite"):
        # several writers (Dask workers, the heartbeat) take turns on one file: wait for the lock rather
        # than fail; WAL lets `skedge runs` read while a partition is being written
        eng = sa.create_engine(url, connect_args={"timeout": 600})

        @sa.event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return eng
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except ImportError as exc:
        raise ImportError(f"{_shown(url)} needs the database driver {exc.name or ''}: {DB_HINT}") from None


@contextlib.contextmanager
def _db_errors(url: str) -> Iterator[None]:
    """A database's failure as one ``EngineError`` line naming the database (password hidden)."""
    sa = _sa()
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        text = " ".join(str(orig).split())
        if len(text) > 300:
            text = text[:299] + "…"
        raise EngineError(f"database {_shown(url)}: {type(orig).__name__}: {text}") from exc


# -- names and column types ----------------------------------------------------------------

def _check_table(table: str) -> None:
    if not isinstance(table, str) or _TABLE_NAME.fullmatch(table) is None:
        raise DataError(f"--table {table!r}: a table name is 1-40 lowercase letters, digits and _, starting "
                        "with a letter or _")
    if table == RUNS_TABLE or table.endswith(("_staging", "_current")) or table.startswith(("sqlite_", "pg_")):
        raise DataError(f"--table {table!r}: the name is reserved (prediction_runs, *_staging, *_current, "
                        "sqlite_*, pg_*)")


def _check_columns(keep: Sequence[str], outputs: Sequence[str]) -> None:
    for k in keep:
        if not isinstance(k, str) or _KEEP_NAME.fullmatch(k) is None:
            raise DataError(f"--keep {k!r}: a column landed in a database is named with letters, digits and _ "
                            "(up to 63, not starting with a digit)")
    for name in outputs:  # from the bundle: always quoted, but never with a quote or NUL inside
        if len(name) > 63 or any(c in name for c in '"`\\\0') or not name.isprintable():
            raise DataError(f"output column {name!r} cannot be a database column name")
    seen: dict[str, str] = {}
    for name in (*keep, *outputs, *_META):
        if name.lower() in seen:
            if name in outputs and seen[name.lower()] in outputs:  # classes 'Yes' and 'yes': no --keep to rename
                raise DataError(f"the model's output columns {seen[name.lower()]!r} and {name!r} differ only in "
                                "case, and SQL compares column names without case: write this model's predictions to a "
                                "file (--output out.parquet)")
            raise DataError(f"column {name!r} would land twice (as {seen[name.lower()]!r}); rename the --keep "
                            "column")
        seen[name.lower()] = name


def _kind_of(values: Any) -> str:
    """``int``, ``float``, ``bool`` or ``text``: how a carried column is typed in the database."""
    mod = type(values).__module__.split(".", 1)[0]
    if mod == "pyarrow":
        import pyarrow as pa

        t = values.type
        if pa.types.is_integer(t):
            return "int"
        if pa.types.is_floating(t):
            return "float"
        if pa.types.is_boolean(t):
            return "bool"
        return "text"
    if isinstance(values, np.ndarray):
        return {"i": "int", "u": "int", "f": "float", "b": "bool"}.get(values.dtype.kind, "text")
    seen = [v for v in values if v is not None and v != ""]
    if seen and all(isinstance(v, bool) for v in seen):
        return "bool"
    if all(_bigint(v) for v in seen) and seen:
        return "int"  # CSV cells are text: a column of whole numbers is an integer id (past BIGINT: text)
    if seen and all(isinstance(v, float) or _bigint(v) for v in seen):
        return "float"  # (a whole number past BIGINT is not one: as a double its id would lose digits)
    return "text"


def _bigint(v: Any) -> bool:
    """A whole number (or its text) that a BIGINT holds: 2**70 made SQLite's driver raise OverflowError."""
    if isinstance(v, str) and _INT_TEXT.fullmatch(v):
        v = int(v)
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < 1 << 63


def _to_list(values: Any) -> list[Any]:
    if hasattr(values, "to_pylist"):
        return list(values.to_pylist())
    if hasattr(values, "tolist"):
        return list(values.tolist())
    return list(values)


def _convert(kind: str, values: Any, name: str, where: str = "", offset: int = 0) -> list[Any]:
    """A carried column as Python values of its database type; ``DataError`` for a value that does not fit."""
    out = _to_list(values)
    if isinstance(values, np.ndarray) or hasattr(values, "to_pylist"):
        if kind == "text":
            return [None if v is None else str(v) for v in out]
        return out  # typed by numpy/pyarrow, as the column was typed from them
    conv: Callable[[Any], Any]
    if kind == "int":
        def conv(v: Any) -> Any:
            if not _bigint(v):
                raise ValueError
            return int(v)
    elif kind == "float":
        def conv(v: Any) -> Any:
            if isinstance(v, bool):
                raise ValueError
            return float(v)
    elif kind == "bool":
        def conv(v: Any) -> Any:
            if isinstance(v, bool):
                return v
            low = str(v).strip().lower()
            if low in ("true", "1", "yes", "false", "0", "no"):
                return low in ("true", "1", "yes")
            raise ValueError
    else:
        def conv(v: Any) -> Any:
            return v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict | list) else str(v)
    result: list[Any] = []
    for i, v in enumerate(out):
        if v is None or v == "":
            result.append(None)
            continue
        try:
            result.append(conv(v))
        except (ValueError, TypeError, OverflowError):
            raise DataError(f"{where}row {offset + i}, --keep column {name!r}: value {str(v)[:60]!r} is not "
                            f"{_KIND_WORDS[kind]}{' in BIGINT range' if kind == 'int' else ''}, as the first rows "
                            "of the first file were") from None
    return result


_KIND_WORDS = {"int": "a whole number", "float": "a number", "bool": "a boolean", "text": "text"}


def _output_kind(scorer: BatchScorer, name: str) -> str:
    dtype = scorer.empty()[name].dtype
    return {"i": "int", "u": "int", "f": "float", "b": "bool"}.get(dtype.kind, "text")


@dataclass(frozen=True)
class Target:
    """Where a run's rows go: shipped to every partition (and Dask worker) that writes them."""

    url: str
    table: str
    run_id: str
    model_name: str
    model_version: str
    columns: tuple[tuple[str, str], ...]  # (name, kind): the kept and the scorer's columns, in order
    keep: tuple[str, ...]

    @property
    def staging(self) -> str:
        return f"{self.table}_staging"

    @property
    def names(self) -> tuple[str, ...]:
        return (*(n for n, _ in self.columns), *_META)


def _sa_type(kind: str) -> Any:
    sa = _sa()
    return {"int": sa.BigInteger, "float": sa.Double, "bool": sa.Boolean, "text": sa.Text}[kind]()


def _tables(target: Target) -> tuple[Any, Any, Any]:
    """(runs, table, staging) as SQLAlchemy tables on one MetaData."""
    sa = _sa()
    md = sa.MetaData()
    runs = _runs_table(md)

    def rows_table(name: str, index: tuple[str, ...]) -> Any:
        cols = [sa.Column(n, _sa_type(k)) for n, k in target.columns]
        cols += [sa.Column("run_id", sa.String(32), nullable=False), sa.Column("model_name", sa.Text),
                 sa.Column("model_version", sa.Text), sa.Column("input_file", sa.Text),
                 sa.Column("input_row", sa.BigInteger)]
        return sa.Table(name, md, *cols, sa.Index(f"ix_{name}_run", *index))

    return runs, rows_table(target.table, ("run_id",)), rows_table(target.staging, ("run_id", "input_file"))


def _runs_table(md: Any) -> Any:
    sa = _sa()
    return sa.Table(
        RUNS_TABLE, md,
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("run_key", sa.String(64), nullable=False, index=True),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("model_name", sa.Text), sa.Column("model_version", sa.Text),
        sa.Column("model_sha256", sa.String(64)),
        sa.Column("inputs", sa.Text),  # JSON: [{"path", "sha256", "rows"}]
        sa.Column("input_files", sa.Integer), sa.Column("rows_in", sa.BigInteger),
        sa.Column("rows_out", sa.BigInteger),
        sa.Column("started_at", sa.DateTime), sa.Column("finished_at", sa.DateTime),
        sa.Column("heartbeat_at", sa.DateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("promoted", sa.Integer, nullable=False, default=0),
        sa.Column("pid", sa.Integer), sa.Column("host", sa.Text), sa.Column("engine", sa.String(16)),
        sa.Column("error", sa.Text),
    )


def _q(conn: Any, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def _create(conn: Any, target: Target) -> tuple[Any, Any, Any]:
    """Create the run table, the rows and staging tables and the view if missing; refuse a table of other columns."""
    sa = _sa()
    runs, table, staging = _tables(target)
    insp = sa.inspect(conn)
    for t in (table, staging):
        if insp.has_table(t.name):
            have = [c["name"] for c in insp.get_columns(t.name)]
            if have != list(target.names):
                raise DataError(f"table {t.name} has the columns {', '.join(have)}; this run lands "
                                f"{', '.join(target.names)}: land it in another --table")
            # same names, other types: SQLite would store 'abc' in a BIGINT id column without a word
            types = {c["name"]: c["type"] for c in insp.get_columns(t.name)}
            for name, kind in target.columns:
                with contextlib.suppress(NotImplementedError):
                    was = types[name].python_type
                    now = {"int": int, "float": float, "bool": bool, "text": str}[kind]
                    if was is not now:
                        raise DataError(f"table {t.name} has column {name!r} as {types[name]}; this run lands "
                                        f"{_KIND_WORDS[kind]} there: land it in another --table")
    runs.metadata.create_all(conn, checkfirst=True)
    view, base, rt = _q(conn, f"{target.table}_current"), _q(conn, target.table), _q(conn, RUNS_TABLE)
    # the table name is a validated identifier ([a-z0-9_]), so it is safe as a literal in DDL, where
    # parameters cannot be bound
    select = (f"SELECT * FROM {base} WHERE run_id = (SELECT r.run_id FROM {rt} r WHERE r.table_name = "
              f"'{target.table}' AND r.status = 'succeeded' ORDER BY r.promoted DESC, r.finished_at DESC, "
              "r.run_id DESC LIMIT 1)")
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"CREATE VIEW IF NOT EXISTS {view} AS {select}")
    elif f"{target.table}_current" not in insp.get_view_names():
        # PostgreSQL has no CREATE VIEW IF NOT EXISTS; OR REPLACE lets two first runs race harmlessly, and
        # checking first keeps later runs from taking the view's exclusive lock while an app reads it
        conn.exec_driver_sql(f"CREATE OR REPLACE VIEW {view} AS {select}")
    return runs, table, staging


# -- writing one partition (an input file) into staging ---------------------------------------

def _bulk_insert(conn: Any, table: Any, names: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Many rows at once: COPY on PostgreSQL (psycopg 3), executemany elsewhere."""
    if not rows:
        return
    cols = ", ".join(_q(conn, n) for n in names)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        with raw.cursor() as cur, cur.copy(f"COPY {_q(conn, table.name)} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    elif conn.dialect.name == "sqlite":
        cur = raw.cursor()
        try:
            cur.executemany(f"INSERT INTO {_q(conn, table.name)} ({cols}) VALUES ({', '.join('?' * len(names))})",
                            rows)
        finally:
            cur.close()
    else:
        conn.execute(table.insert(), [dict(zip(names, r, strict=True)) for r in rows])


def _rows(target: Target, cols: dict[str, Any], n: int, offset: int, src: str) -> list[tuple[Any, ...]]:
    kinds = dict(target.columns)
    lists: list[Iterable[Any]] = [_convert(kinds[k], cols[k], k, f"{src}: ", offset) for k in target.keep]
    # a text column gets text: a True/False class would land as 1/0 (SQLite) while the file output and the
    # proba_True / proba_False column names spell it True/False
    lists += [[None if v is None else str(v) for v in _to_list(cols[name])] if kind == "text"
              else _to_list(cols[name]) for name, kind in target.columns[len(target.keep):]]
    lists += [repeat(target.run_id, n), repeat(target.model_name, n), repeat(target.model_version, n),
              repeat(src, n), range(offset, offset + n)]
    return list(zip(*lists, strict=False))  # the repeats are exactly n long; the columns are n rows each


def stage_file(scorer: BatchScorer, target: Target, src: Path, *, batch_rows: int = BATCH_ROWS,
               on_rows: Callable[[int], None] | None = None) -> int:
    """Score one input file into the run's staging rows, in one transaction; return its row count.

    The file's earlier staging rows of this run are deleted first, in the same transaction: a Dask task
    that runs again (its worker died after writing) leaves one copy, not two.
    """
    sa = _sa()
    _, _, staging = _tables(target)
    with _db_errors(target.url), _engine(target.url).begin() as conn:
        conn.execute(sa.delete(staging).where(staging.c.run_id == target.run_id, staging.c.input_file == str(src)))
        offset = 0
        for n, cols in scored_chunks(scorer, src, target.keep, batch_rows=batch_rows):
            _bulk_insert(conn, staging, target.names, _rows(target, cols, n, offset, str(src)))
            offset += n
            if on_rows is not None:
                on_rows(n)
    return offset


def _stage_task(key: str, target: Target, src: str) -> int:
    from ._batch import installed_scorer

    return stage_file(installed_scorer(key), target, Path(src))


# -- a run ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    """One row of ``prediction_runs``, with its status as seen now: a dead ``running`` run shows ``failed``."""

    run_id: str
    run_key: str
    table: str
    model_name: str | None
    model_version: str | None
    model_sha256: str | None
    inputs: tuple[dict[str, Any], ...]
    rows_in: int | None
    rows_out: int | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    status: str  # running, succeeded, failed, replaced
    stored_status: str  # what the table says: "running" for a run whose process died
    promoted: bool
    current: bool  # the run <table>_current shows
    pid: int | None
    host: str | None
    engine: str | None
    error: str | None

    @property
    def abandoned(self) -> bool:
        """Left ``running`` by a process that is gone: ``repair_runs`` marks it failed and drops its staging rows."""
        return self.stored_status == "running" and self.status == "failed"


def _is_dead(row: Any, now: datetime) -> bool:
    if row.status != "running":
        return False
    if row.host == socket.gethostname() and row.pid is not None and not pid_alive(int(row.pid), zombie_is_dead=True):
        return True
    beat = row.heartbeat_at or row.started_at
    return beat is None or now - beat > STALE_AFTER


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _heartbeat(url: str, runs: Any, run_id: str, stop: threading.Event) -> None:
    sa = _sa()
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(Exception):  # a missed beat is not a failure: the next one may land
            with _engine(url).begin() as conn:
                conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(heartbeat_at=_utcnow()))


def predict_to_db(bundle: str | os.PathLike[str] | ModelBytes, inputs: str | os.PathLike[str] | Sequence[Path],
                  url: str, *, table: str = "predictions", keep: Sequence[str] = (), target: str = "onnx",
                  engine: str = "local", scheduler: str | None = None, workers: int | None = None,
                  progress: Progress | None = None) -> RunInfo:
    """Score ``inputs`` with ``bundle`` into ``table`` of the database at ``url``, all or nothing.

    ``inputs`` is what ``skedge predict --input`` takes (a file, a directory, a glob) or a list of files.
    ``engine="dask"`` scores one file per Dask task, each task writing its rows to staging from its worker
    (``scheduler``/``workers`` as for ``skedge predict``). Returns the finished run.
    """
    sa = _sa()
    if engine not in ("local", "dask"):
        raise DataError(f"engine {engine!r}: expected local or dask")
    _check_table(table)
    keep = tuple(keep)
    payload = bundle if isinstance(bundle, ModelBytes) else ModelBytes.read(bundle, target=target)
    scorer = scorer_for(payload)
    check_keep(scorer, keep)
    _check_columns(keep, scorer.columns)
    files = [Path(p).absolute() for p in (find_inputs(inputs) if isinstance(inputs, str | os.PathLike) else inputs)]
    if not files:
        raise DataError("no input files to score")
    url = _normalize_url(url)
    kinds = _keep_kinds(scorer, files, keep) if keep else {}
    columns = (*((k, kinds[k]) for k in keep), *((c, _output_kind(scorer, c)) for c in scorer.columns))
    run_id = uuid.uuid4().hex[:16]
    tgt = Target(url, table, run_id, payload.name or "", payload.version or "", tuple(columns), keep)
    digests = [_digest(f) for f in files]
    run_key = hashlib.sha256(json.dumps([payload.sha256, payload.target, sorted(digests), table, list(keep)])
                             .encode()).hexdigest()
    eng = _engine(url)
    with _db_errors(url), eng.begin() as conn:
        runs, main, staging = _create(conn, tgt)
        now = _utcnow()
        conn.execute(runs.insert().values(
            run_id=run_id, run_key=run_key, table_name=table, model_name=tgt.model_name,
            model_version=tgt.model_version, model_sha256=payload.sha256,
            inputs=json.dumps([{"path": str(f), "sha256": d} for f, d in zip(files, digests, strict=True)]),
            input_files=len(files), rows_in=0, rows_out=0, started_at=now, heartbeat_at=now, status="running",
            promoted=0, pid=os.getpid(), host=socket.gethostname(), engine=engine))
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(url, runs, run_id, stop), daemon=True,
                            name=f"skedge-heartbeat-{run_id}")
    beat.start()
    try:
        if engine == "dask":
            counts = _stage_on_dask(payload, tgt, files, progress, scheduler=scheduler, workers=workers)
        else:
            counts = []
            for f in files:
                counts.append(stage_file(scorer, tgt, f, on_rows=progress.add_rows if progress else None))
                if progress is not None:
                    progress.file_done()
        _commit(tgt, runs, main, staging, run_key, files, digests, counts)
    except BaseException as exc:
        stop.set()
        with contextlib.suppress(Exception):  # already failing: the original error is the one to show
            with eng.begin() as conn:
                conn.execute(sa.delete(staging).where(staging.c.run_id == run_id))
                conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(
                    status="failed", finished_at=_utcnow(), error=" ".join(str(exc).split())[:1000] or
                    type(exc).__name__))
        raise
    finally:
        stop.set()
        beat.join(timeout=HEARTBEAT_SECONDS + 1)
    return next(r for r in list_runs(url, table=table) if r.run_id == run_id)


def _keep_kinds(scorer: BatchScorer, files: Sequence[Path], keep: tuple[str, ...]) -> dict[str, str]:
    # typed from the first chunk that has rows (an empty first file typed every CSV id as text, for good: the
    # table keeps its first run's types); a later value that does not fit is a DataError
    first = None
    for f in files:
        for chunk in iter_chunks(f, scorer.schema, keep=keep):
            if chunk.n:
                return {k: _kind_of(chunk.carried[k]) for k in keep}
            first = chunk if first is None else first
    if first is None:
        first = next(iter(iter_chunks(files[0], scorer.schema, keep=keep)))
    return {k: _kind_of(first.carried[k]) for k in keep}


def _stage_on_dask(payload: ModelBytes, target: Target, files: Sequence[Path], progress: Progress | None, *,
                   scheduler: str | None, workers: int | None) -> list[int]:
    from distributed import KilledWorker, as_completed

    from .dask import ModelPlugin, connect, plugin_name

    with connect(scheduler, workers) as client:
        name = plugin_name(payload)
        client.register_plugin(ModelPlugin(payload), name=name)
        futures = [client.submit(_stage_task, payload.key, target, str(f), key=f"skedge-db-{target.run_id}-{i}",
                                 pure=False, retries=0) for i, f in enumerate(files)]
        try:
            for future in as_completed(futures, loop=client.loop):
                rows = int(future.result())
                if progress is not None:
                    progress.file_done(rows)
            return [int(f.result()) for f in futures]
        except KilledWorker as exc:
            client.cancel(futures)
            raise EngineError(f"Dask gave up on a task: {' '.join(str(exc).split())}") from None
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(name)


def _commit(target: Target, runs: Any, main: Any, staging: Any, run_key: str, files: Sequence[Path],
            digests: Sequence[str], counts: Sequence[int]) -> None:
    """Make the run's rows visible in one transaction, replacing an earlier run of the same key."""
    sa = _sa()
    total = sum(counts)
    with _db_errors(target.url), _engine(target.url).begin() as conn:
        staged = conn.execute(sa.select(sa.func.count()).select_from(staging)
                              .where(staging.c.run_id == target.run_id)).scalar_one()
        if staged != total:
            raise EngineError(f"run {target.run_id}: {staged:,} rows are staged but the partitions reported "
                              f"{total:,}: not committed")
        old = conn.execute(sa.select(runs.c.run_id, runs.c.promoted).where(
            runs.c.run_key == run_key, runs.c.status == "succeeded", runs.c.run_id != target.run_id)).all()
        old_ids = [r.run_id for r in old]
        if old_ids:
            conn.execute(sa.delete(main).where(main.c.run_id.in_(old_ids)))
            conn.execute(sa.update(runs).where(runs.c.run_id.in_(old_ids)).values(status="replaced", promoted=0))
        cols = [main.c[n] for n in target.names]
        conn.execute(main.insert().from_select(cols, sa.select(*(staging.c[n] for n in target.names))
                                               .where(staging.c.run_id == target.run_id)))
        conn.execute(sa.delete(staging).where(staging.c.run_id == target.run_id))
        conn.execute(sa.update(runs).where(runs.c.run_id == target.run_id).values(
            status="succeeded", finished_at=_utcnow(), rows_in=total, rows_out=total,
            promoted=1 if any(r.promoted for r in old) else 0,  # a re-run of the promoted run stays promoted
            inputs=json.dumps([{"path": str(f), "sha256": d, "rows": n}
                               for f, d, n in zip(files, digests, counts, strict=True)])))


# -- looking at runs ------------------------------------------------------------------------

def _runs_of(url: str) -> tuple[Any, Any]:
    sa = _sa()
    url = _normalize_url(url)
    if url.startswith("sqlite"):
        path = Path(sa.engine.make_url(url).database or "")
        if not path.is_file():  # connecting would create an empty database under a mistyped name
            raise DataError(f"{path}: no such database file (skedge predict --output sqlite:///{path} makes it)")
    eng = _engine(url)
    return eng, _runs_table(sa.MetaData())


def list_runs(url: str, *, table: str | None = None) -> list[RunInfo]:
    """Every run recorded in the database, oldest first (of ``table`` only, if given)."""
    sa = _sa()
    if table is not None:
        _check_table(table)
    eng, runs = _runs_of(url)
    with _db_errors(url), eng.connect() as conn:
        if not sa.inspect(conn).has_table(RUNS_TABLE):
            return []
        query = sa.select(runs).order_by(runs.c.started_at, runs.c.run_id)
        if table is not None:
            query = query.where(runs.c.table_name == table)
        rows = conn.execute(query).all()
    now = _utcnow()
    current: dict[str, str] = {}
    for r in sorted((r for r in rows if r.status == "succeeded"),
                    key=lambda r: (r.promoted, r.finished_at or datetime.min, r.run_id)):
        current[r.table_name] = r.run_id  # the view's rule: promoted first, then the latest finished
    return [RunInfo(
        run_id=r.run_id, run_key=r.run_key, table=r.table_name, model_name=r.model_name,
        model_version=r.model_version, model_sha256=r.model_sha256, inputs=tuple(json.loads(r.inputs or "[]")),
        rows_in=r.rows_in, rows_out=r.rows_out, started_at=r.started_at, finished_at=r.finished_at,
        heartbeat_at=r.heartbeat_at, status="failed" if _is_dead(r, now) else r.status, stored_status=r.status,
        promoted=bool(r.promoted), current=current.get(r.table_name) == r.run_id, pid=r.pid, host=r.host,
        engine=r.engine, error=r.error) for r in rows]


def repair_runs(url: str) -> list[str]:
    """Mark every run left ``running`` by a dead process ``failed`` and drop its staging rows; their ids.

    Staging rows of any run that is not running any more go too (a Dask task that was still writing when
    its failed run cleaned up): only live runs keep staging rows.
    """
    sa = _sa()
    eng, runs = _runs_of(url)
    all_runs = list_runs(url)
    repaired = [r.run_id for r in all_runs if r.abandoned]
    live = [r.run_id for r in all_runs if r.status == "running"]
    with _db_errors(url), eng.begin() as conn:
        for run_id in repaired:
            conn.execute(sa.update(runs).where(runs.c.run_id == run_id, runs.c.status == "running").values(
                status="failed", finished_at=_utcnow(), error="the process running it died (repaired)"))
        insp = sa.inspect(conn)
        for table in sorted({r.table for r in all_runs if _TABLE_NAME.fullmatch(r.table)}):
            staging = sa.Table(f"{table}_staging", sa.MetaData(), sa.Column("run_id", sa.String(32)))
            if insp.has_table(staging.name):
                conn.execute(sa.delete(staging).where(staging.c.run_id.not_in(live)))
    return repaired


def promote_run(url: str, run_id: str) -> RunInfo:
    """Make ``<table>_current`` show ``run_id``'s rows (a succeeded run); the other runs of its table step down."""
    sa = _sa()
    eng, runs = _runs_of(url)
    found = [r for r in list_runs(url) if r.run_id == run_id]
    if not found:
        raise DataError(f"no run {run_id!r} in {_shown(url)} (skedge runs --db URL lists them)")
    run = found[0]
    if run.status != "succeeded":
        raise GateError(f"run {run_id} is {run.status}: only a succeeded run can be promoted")
    with _db_errors(url), eng.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.table_name == run.table).values(promoted=0))
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(promoted=1))
    return next(r for r in list_runs(url, table=run.table) if r.run_id == run_id)
