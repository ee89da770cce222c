"""Batch scoring throughput: one process vs Dask with 1 and 2 workers, Parquet files in and out.

    .venv/bin/python bench/bench_dask.py                      # 24 files x 100,000 rows = 2.4M rows
    .venv/bin/python bench/bench_dask.py --files 40 --rows 50000 --bundle models/penguins/1.0.0
    .venv/bin/python bench/bench_dask.py --quick              # a smoke run (what run_all.py -- --quick passes)

The dataset (jittered Palmer penguins, an id column, some missing values) is
generated into a temporary directory and deleted afterwards; nothing is
committed. Without --bundle, examples/penguins.toml is trained into the same
temporary directory (needs the train extra). Every configuration scores the
same files into its own output directory, exactly as
`skedge predict --input DIR --output DIR --keep id [--engine dask --workers N]`
does, and the outputs are checked to be identical bit for bit.

rows/s counts the job: for Dask from handing the model to the workers (the
plugin, their sessions, their first imports) to the last file written; the local
cluster's start-up is shown beside it, not counted. Best of --repeat runs,
interleaved so that load from elsewhere on the machine hits every configuration.
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
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]


def make_dataset(path: Path, files: int, rows: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    src = pd.read_csv(ROOT / "examples" / "penguins.csv")
    path.mkdir(parents=True)
    for i in range(files):
        df = src.iloc[rng.integers(0, len(src), rows)].reset_index(drop=True)
        for c in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
            df[c] = (df[c] * (1 + rng.normal(0, 0.02, rows))).round(3)
        df.loc[rng.random(rows) < 0.01, "sex"] = None
        df.insert(0, "id", np.arange(rows, dtype=np.int64) + i * 10_000_000)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path / f"part-{i:04d}.parquet")
    return files * rows


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(out.iterdir()):
        t = pq.read_table(f)
        for col in t.column_names:
            a = t.column(col).to_numpy(zero_copy_only=False)
            h.update(a.tobytes() if a.dtype != object else "\0".join(map(str, a)).encode())
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--rows", type=int, default=100_000, help="rows per file")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--bundle", help="a bundle to use instead of training examples/penguins.toml")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 20 files x 5,000 rows, once")
    args = ap.parse_args()
    if args.quick:
        args.files, args.rows, args.repeat = 20, 5_000, 1

    from skedge.runtime._batch import ModelBytes, scorer_for
    from skedge.runtime._files import find_inputs
    from skedge.runtime._jobs import Progress, plan_outputs, run_local
    from skedge.runtime.dask import connect, score_files

    tmp = Path(tempfile.mkdtemp(prefix="skedge-bench-dask-"))
    try:
        if args.bundle:
            bundle = Path(args.bundle)
        else:
            from skedge.trainer import train

            bundle = train(ROOT / "examples" / "penguins.toml", tmp / "models").path
        t0 = time.perf_counter()
        n = make_dataset(tmp / "data", args.files, args.rows)
        size = sum(f.stat().st_size for f in (tmp / "data").iterdir())
        print(f"dataset: {n:,} rows in {args.files} Parquet files ({size / 1e6:.0f} MB), "
              f"generated in {time.perf_counter() - t0:.1f} s")
        print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}")
        inputs = find_inputs(tmp / "data")
        payload = ModelBytes.read(bundle)
        keep = ("id",)

        def timed(run: Callable[..., int], label: str, i: int) -> tuple[float, str]:
            out = tmp / f"out-{label}-{i}"
            plan = plan_outputs(inputs, out)
            t = time.perf_counter()
            rows = run(plan)
            dt = time.perf_counter() - t
            plan.commit()
            assert rows == n, (rows, n)
            d = digest(out)
            shutil.rmtree(out)
            return dt, d

        scorer = scorer_for(payload)

        def local(i: int) -> tuple[float, float | None, str]:
            dt, d = timed(lambda plan: run_local(scorer, plan, keep, Progress(0, enabled=False)), "local", i)
            return dt, None, d

        def on_dask(workers: int) -> Callable[[int], tuple[float, float | None, str]]:
            def run(i: int) -> tuple[float, float | None, str]:
                t = time.perf_counter()
                with connect(None, workers) as client:
                    startup = time.perf_counter() - t
                    dt, d = timed(lambda plan: score_files(payload, plan, keep, client), f"dask{workers}", i)
                return dt, startup, d
            return run

        configs = {"single process (--engine local)": local,
                   "dask, 1 worker (--engine dask --workers 1)": on_dask(1),
                   "dask, 2 workers (--engine dask --workers 2)": on_dask(2)}
        runs: dict[str, list[tuple[float, float | None, str]]] = {label: [] for label in configs}
        load0 = os.getloadavg()[0]
        # interleaved, so that a neighbour's load on a shared machine hits every configuration alike
        for i in range(args.repeat):
            for label, run in configs.items():
                runs[label].append(run(i))
        results = [(label, *min(r, key=lambda x: x[0])) for label, r in runs.items()]

        base = results[0][1]
        print()
        print(f"{'configuration':<50} {'seconds':>8} {'rows/s':>10} {'speed-up':>9} {'cluster start':>14}")
        for label, dt, startup, _ in results:
            start = f"{startup:.2f} s" if startup is not None else "-"
            print(f"{label:<50} {dt:>8.2f} {n / dt:>10,.0f} {base / dt:>8.2f}x {start:>14}")
        print(f"best of {args.repeat} interleaved runs; load average {load0:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after (on {os.cpu_count()} CPUs)")
        same = len({d for r in runs.values() for _, _, d in r}) == 1
        print(f"\noutputs identical across configurations (sha256 over every column): {'yes' if same else 'NO'}")
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":  # a guard Dask's worker processes need: they start by importing this file
    sys.exit(main())
