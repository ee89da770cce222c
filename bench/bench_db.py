"""Predictions into a database: rows per second into SQLite and PostgreSQL, one process and Dask with 2 workers.

    .venv/bin/python bench/bench_db.py                  # 10 files x 100,000 rows = 1M rows
    .venv/bin/python bench/bench_db.py --quick          # a smoke run (what run_all.py -- --quick passes)

Every configuration lands the same Parquet files, exactly as
`skedge predict --input DIR --output DB-URL --keep id [--engine dask --workers 2]` does
(``skedge.runtime.db.predict_to_db``), into a fresh database: staging, the commit that makes
the run visible, the run record. Beside them, the same files scored into Parquet files
(`--output DIR`), the cost of the scoring alone. The SQLite database is a file in a
temporary directory; PostgreSQL is a throwaway cluster of Debian's `postgresql` package
(tests/db/pgserver.py) on 127.0.0.1, fsync off. The Dask cluster (2 worker processes, one
thread each) is started and warmed up by a small job before the clock starts: neither is counted.

Writes its section of docs/bench.md (not with --quick). Nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from docsection import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.db.pgserver: the same throwaway cluster the tests start
DOC = ROOT / "docs" / "bench.md"
START, END = "<!-- bench_db:start -->", "<!-- bench_db:end -->"


def table_digest(url: str, table: str) -> str:
    import sqlalchemy as sa

    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    h = hashlib.sha256()
    with eng.connect() as conn:
        res = conn.execute(sa.text(f'SELECT id, prediction, "proba_Adelie", "proba_Chinstrap", "proba_Gentoo" '
                                   f"FROM {table} ORDER BY input_file, input_row"))
        for row in res:
            h.update(repr(tuple(row)).encode())
    eng.dispose()
    return h.hexdigest()


def write_doc(text: str) -> None:
    write_section(DOC, START, END, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--rows", type=int, default=100_000, help="rows per file")
    ap.add_argument("--bundle", help="a bundle to use instead of training examples/penguins.toml")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 4 files x 5,000 rows, no doc written")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/bench.md")
    args = ap.parse_args()
    if args.quick:
        args.files, args.rows = 4, 5_000

    import sqlalchemy
    from distributed import LocalCluster

    from bench.bench_dask import make_dataset
    from skedge.runtime._batch import ModelBytes, scorer_for
    from skedge.runtime._files import find_inputs
    from skedge.runtime._jobs import Progress, plan_outputs, run_local
    from skedge.runtime.db import predict_to_db
    from tests.db.pgserver import find_pg_bin, fresh_database, throwaway_postgres

    pg_bin = find_pg_bin()
    if pg_bin is None:
        print("PostgreSQL is not installed (apt-get install postgresql)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="skedge-bench-db-"))
    try:
        if args.bundle:
            bundle = Path(args.bundle)
        else:
            from skedge.trainer import train

            bundle = train(ROOT / "examples" / "penguins.toml", tmp / "models").path
        n = make_dataset(tmp / "data", args.files, args.rows)
        inputs = find_inputs(tmp / "data")
        payload = ModelBytes.read(bundle)
        scorer = scorer_for(payload)
        print(f"dataset: {n:,} rows in {args.files} Parquet files; machine: {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")

        with throwaway_postgres(pg_bin) as pg_admin, \
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            counter = iter(range(1000))

            def sqlite_url() -> str:
                return f"sqlite:///{tmp / f'bench-{next(counter)}.db'}"

            def pg_url() -> str:
                return fresh_database(pg_admin, f"bench_{next(counter)}")

            def files(_: str) -> int:
                plan = plan_outputs(inputs, tmp / f"out-{next(counter)}")
                rows = run_local(scorer, plan, ("id",), Progress(0, enabled=False))
                plan.commit()
                return rows

            def into(engine: str) -> Callable[[str], int]:
                def run(url: str) -> int:
                    sched = cluster.scheduler_address if engine == "dask" else None
                    return predict_to_db(payload, inputs, url, table="predictions", keep=["id"], engine=engine,
                                         scheduler=sched).rows_out or 0
                return run

            configs: list[tuple[str, Callable[[], str], Callable[[str], int]]] = [
                ("Parquet files, one process (`--output DIR`)", lambda: "", files),
                ("SQLite, one process", sqlite_url, into("local")),
                ("SQLite, Dask 2 workers", sqlite_url, into("dask")),
                ("PostgreSQL (COPY), one process", pg_url, into("local")),
                ("PostgreSQL (COPY), Dask 2 workers", pg_url, into("dask")),
            ]
            # warm the workers up (imports, the plugin, their sessions, a first connection to each
            # database), not counted: the first job on a fresh cluster spends seconds importing
            for make_url in (sqlite_url, pg_url):
                predict_to_db(payload, inputs[:2], make_url(), table="warmup", keep=["id"], engine="dask",
                              scheduler=cluster.scheduler_address)
            results = []
            digests = set()
            for label, make_url, run in configs:
                url = make_url()
                t = time.perf_counter()
                rows = run(url)
                dt = time.perf_counter() - t
                assert rows == n, (label, rows, n)
                if url:
                    digests.add(table_digest(url, "predictions"))
                results.append((label, dt))
                print(f"{label:<45} {dt:>7.2f} s {n / dt:>11,.0f} rows/s", flush=True)
        same = len(digests) == 1
        print(f"landed rows identical across the four database configurations: {'yes' if same else 'NO'}")
        base = results[0][1]
        lines = ["## Predictions into a database (bench/bench_db.py)", "",
                 f"{n:,} rows ({args.files} Parquet files of {args.rows:,} penguins rows, an id kept), landed as "
                 "`skedge predict --output DB-URL --keep id` lands them: staged per file, committed once, run "
                 "recorded. Dask: a local cluster of 2 worker processes (1 thread each), its start-up and a "
                 "warm-up job (imports, sessions, first connections) not counted. "
                 f"Landed rows identical across the database configurations: {'yes' if same else 'NO'}.", "",
                 "| configuration | seconds | rows/s | vs Parquet files |", "|---|---:|---:|---:|"]
        for label, dt in results:
            lines.append(f"| {label} | {dt:.2f} | {n / dt:,.0f} | {base / dt:.2f}x |")
        import psycopg

        lines += ["", f"{date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores (load average "
                  f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} at the end), Python "
                  f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, psycopg {psycopg.__version__}, "
                  f"PostgreSQL from {pg_bin} (fsync off), SQLite {__import__('sqlite3').sqlite_version} (WAL)"]
        text = "\n".join(lines)
        print()
        print(text)
        if not args.quick and not args.no_write:
            write_doc(text)
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":  # a guard Dask's worker processes need: they start by importing this file
    sys.exit(main())
