"""``predict``: score files with a bundle, for both ``skedge predict`` and ``python -m skedge.runtime``.

Lives in the runtime so that a runtime-only install can score CSV and JSONL
files (Parquet adds pyarrow; ``--engine dask`` adds the ``dask`` extra, imported
only when asked for).

    skedge predict BUNDLE --input rows.csv                      # CSV on stdout
    skedge predict BUNDLE --input rows.csv --output pred.parquet
    skedge predict BUNDLE --input 'data/*.parquet' --output preds/ --keep id
    skedge predict BUNDLE --input data/ --output preds/ --engine dask --scheduler tcp://10.0.0.5:8786
    skedge predict BUNDLE --input data/ --output sqlite:///preds.db --table predictions --keep id
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

from ._batch import ModelBytes, scorer_for
from ._files import ColumnWriter, find_inputs
from ._jobs import Progress, check_keep, plan_outputs, run_local, scored_chunks
from .db import is_db_url

__all__ = ["add_predict_arguments", "run_predict"]


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {n}")
    return n


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle directory (or a .onnx/.ort file exported by skedge)")
    p.add_argument("--input", "-i", required=True, metavar="PATH",
                   help="rows to score: a .csv, .jsonl or .parquet file, a directory of them, or a quoted "
                        "glob such as 'data/part-*.parquet'")
    p.add_argument("--output", "-o", metavar="DIR",
                   help="a directory: one output file per input file, with its name and format, same row "
                        "order; for a single input also a file (.csv, .jsonl, .parquet); or a database URL "
                        "(sqlite:///preds.db, postgresql://user@host/db; pip install 'skedge[db]'), where the "
                        "run lands all or nothing in --table. Default: CSV on stdout")
    p.add_argument("--table", metavar="NAME",
                   help="with --output DB-URL: the table the rows land in (default: predictions); the view "
                        "NAME_current shows the promoted run (skedge runs --promote)")
    p.add_argument("--keep", action="append", default=[], metavar="COL",
                   help="carry an input column through to the output (an id); repeatable")
    p.add_argument("--target", default="onnx", choices=["onnx", "ort"], help="which model file of the bundle")
    p.add_argument("--registry", metavar="REG", help="BUNDLE is NAME@ALIAS or NAME@VERSION of this registry")
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="local: this process, file after file (default); dask: one Dask task per file "
                        "(pip install 'skedge[dask]')")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --engine dask: a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local cluster). Workers must see --input and "
                        "--output at the same paths")
    g.add_argument("--workers", type=_positive, metavar="N",
                   help="with --engine dask and no scheduler: processes of the local cluster (default: one "
                        "per CPU)")
    p.set_defaults(_predict_parser=p)


def _usage(args: argparse.Namespace, message: str) -> NoReturn:
    parser: argparse.ArgumentParser | None = getattr(args, "_predict_parser", None)
    if parser is not None:
        parser.error(message)  # usage and the message, exit status 2
    raise SystemExit(f"error: {message}")


def _print_csv(scorer: Any, src: Path, keep: tuple[str, ...]) -> int:
    # Everything is scored before anything is printed: a bad row gives an error, not half a table.
    buf = io.StringIO()
    rows = 0
    with ColumnWriter.to_stream(buf, "csv") as writer:
        for n, cols in scored_chunks(scorer, src, keep):
            writer.write(cols)
            rows += n
    sys.stdout.write(buf.getvalue())
    return rows


def run_predict(args: argparse.Namespace) -> int:
    engine = getattr(args, "engine", "local")
    scheduler = getattr(args, "scheduler", None)
    workers = getattr(args, "workers", None)
    if engine != "dask" and (scheduler or workers):
        _usage(args, "--scheduler and --workers go with --engine dask")
    if scheduler and workers:
        _usage(args, "--workers sizes a local cluster; with --scheduler the cluster has its own workers")
    if getattr(args, "registry", None):
        from .registry import locate

        args.bundle = locate(args.bundle, args.registry)
    inputs = find_inputs(args.input)
    keep = tuple(args.keep)
    if is_db_url(args.output):
        return _predict_to_db(args, inputs, keep, engine, scheduler, workers)
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", args.output or "")
    if scheme:  # mysql://user:pw@host/db was written as the folders mysql:/user:pw@host/db, and "wrote" said so
        _usage(args, f"--output {scheme.group(1)}://...: not a database skedge writes to (sqlite:///path.db, "
                     "postgresql://user@host/db) nor a folder")
    if getattr(args, "table", None):
        _usage(args, "--table goes with --output DB-URL (sqlite:///path.db, postgresql://...)")
    if args.output is None:
        if len(inputs) > 1:
            _usage(args, f"--input names {len(inputs)} files: give --output DIR for their outputs")
        if engine == "dask":
            _usage(args, "--engine dask writes files: give --output DIR")
    payload = ModelBytes.read(args.bundle, target=args.target)
    scorer = scorer_for(payload)  # the model is checked here, before any file is read or written
    check_keep(scorer, keep)
    if args.output is None:
        _print_csv(scorer, inputs[0], keep)
        return 0
    plan = plan_outputs(inputs, args.output)
    progress = Progress(len(plan.jobs))
    try:
        if engine == "dask":
            from .dask import run_files  # Dask is imported only when asked for

            rows = run_files(payload, plan, keep, progress, scheduler=scheduler, workers=workers)
        else:
            rows = run_local(scorer, plan, keep, progress)
        progress.close()
        plan.commit()
    except BaseException:
        progress.close()
        plan.abort()
        raise
    files = f"{len(plan.jobs)} files" if len(plan.jobs) > 1 else "1 file"
    rate = rows / max(progress.seconds, 1e-9)
    print(f"wrote {rows:,} predictions for {files} to {args.output} in {progress.seconds:.1f} s "
          f"({rate:,.0f} rows/s, engine {engine})", file=sys.stderr)
    return 0


def _predict_to_db(args: argparse.Namespace, inputs: list[Path], keep: tuple[str, ...], engine: str,
                   scheduler: str | None, workers: int | None) -> int:
    from .db import predict_to_db  # SQLAlchemy is imported inside, only now

    progress = Progress(len(inputs))
    try:
        run = predict_to_db(args.bundle, inputs, args.output, table=getattr(args, "table", None) or "predictions",
                            keep=keep, target=args.target, engine=engine, scheduler=scheduler, workers=workers,
                            progress=progress)
    finally:
        progress.close()
    rows = run.rows_out or 0
    files = f"{len(inputs)} files" if len(inputs) > 1 else "1 file"
    rate = rows / max(progress.seconds, 1e-9)
    print(f"landed {rows:,} predictions for {files} in table {run.table} (run {run.run_id}) in "
          f"{progress.seconds:.1f} s ({rate:,.0f} rows/s, engine {engine})", file=sys.stderr)
    return 0
