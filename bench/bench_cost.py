"""The runtime's cost per model of the coverage census (issue #17), side by side in one process.

For each census case (tests/exporter/census.py) that skedge exports:

* one row: ``Model.predict(dict)`` against raw ``InferenceSession.run`` on feeds built beforehand (p50, p99);
* N rows (default 100,000, drawn from the holdout): the runtime against the sklearn pipeline as trained and with
  every ``n_jobs`` set to the core count;
* a fresh process to its first prediction (import, load, one row), against sklearn (import, unpickle, predict);
* peak memory (VmHWM of a subprocess: ru_maxrss is inherited across fork + exec) of load + predicting the N
  rows, runtime against sklearn;
* model.onnx and model.ort size against the pickled pipeline;
* in Chromium (onnxruntime-web, the demo page), the time from navigation to the first prediction shown.

Answers are checked before they are timed (labels or values against sklearn on the rows). Writes its own
section of docs/bench.md.

    python bench/bench_cost.py                 # the representative subset (see SUBSET), 100,000 rows
    python bench/bench_cost.py --all           # every census case skedge exports
    python bench/bench_cost.py --rows 20000 --no-browser --no-write
    python bench/bench_cost.py --quick         # a smoke run (bench/run_all.py -- --quick)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, cast

import numpy as np
from docsection import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "bench.md"
START, END = "<!-- bench_cost:start -->", "<!-- bench_cost:end -->"

# one case per family the runtime treats differently (trees in both layouts, linear, kernels, text, neighbours,
# boosting, anomaly, multi-output): the whole census takes ~10x longer
SUBSET = (
    "LogisticRegression (skedge)", "RandomForestClassifier (skedge)", "RandomForestRegressor multi-output",
    "IsolationForest (skedge)", "HistGradientBoosting native categorical", "imputer + one-hot + calibrated SVC",
    "TfidfVectorizer(sublinear_tf) + LogisticRegression", "KNeighborsClassifier (uniform)",
)

# Peak memory from VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork + exec, so every child reported the
# bench process's own 541 MiB; VmHWM belongs to the child's fresh address space.
HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
RUNTIME_CHILD = """
import sys, time
t = time.perf_counter()
import numpy as np
from skedge.runtime import load
model = load(sys.argv[1])
cols = dict(np.load(sys.argv[2], allow_pickle=True))
model.predict(cols)
print(HWM, time.perf_counter() - t)
""".replace("HWM", HWM)
SKLEARN_CHILD = """
import pickle, sys, time
t = time.perf_counter()
import pandas as pd
with open(sys.argv[1], "rb") as fh:
    pipeline = pickle.load(fh)
frame = pd.read_pickle(sys.argv[2])
pipeline.predict(frame)
print(HWM, time.perf_counter() - t)
""".replace("HWM", HWM)
RUNTIME_START = """
import json, sys
from skedge.runtime import load
print(load(sys.argv[1]).predict(json.loads(sys.argv[2])))
"""
SKLEARN_START = """
import json, pickle, sys
import pandas as pd
with open(sys.argv[1], "rb") as fh:
    pipeline = pickle.load(fh)
row = {k: (float("nan") if v is None else v) for k, v in json.loads(sys.argv[2]).items()}
print(pipeline.predict(pd.DataFrame([row]))[0])
"""


def _child(code: str, *args: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-1500:])
    return time.perf_counter() - t, out.stdout.strip()


def _pct(samples: list[int], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0


def _calls(fn: Callable[[], Any], n: int) -> list[int]:
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t)
    return out


def _best(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _all_cores(pipe: Any) -> Any:
    clone = pickle.loads(pickle.dumps(pipe))
    params = {k: os.cpu_count() for k in clone.get_params(deep=True) if k == "n_jobs" or k.endswith("__n_jobs")}
    return clone.set_params(**params) if params else clone


def measure(case: Any, work: Path, rows: int, calls: int, reps: int, browser: Any) -> dict[str, Any] | None:
    import onnxruntime as ort

    from skedge.exporter import export
    from skedge.exporter._schema import rows_to_json
    from skedge.runtime import SkedgeError, load
    from tests.exporter.census import _accepted, _fit

    pipe, X, holdout = _fit(case)
    out = work / case.name.replace(" ", "_").replace("/", "_")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = export(pipe, X, out, name="cost", version="1.0.0", targets=("onnx", "ort"))
    except SkedgeError:
        return None  # refused: nothing to cost
    model = load(path)
    pool = _accepted(pipe, holdout).dropna().reset_index(drop=True)
    if pool.empty:
        pool = _accepted(pipe, holdout).reset_index(drop=True)
    frame = pool.iloc[np.random.default_rng(0).integers(0, len(pool), rows)].reset_index(drop=True)
    one = rows_to_json(pool.iloc[:1], model.schema)[0]
    quiet = warnings.catch_warnings()
    quiet.__enter__()
    warnings.simplefilter("ignore")
    want = pipe.predict(frame)
    got = model.predict(frame)
    if model.schema.task == "regression":
        assert np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=1e-5, atol=1e-5)
    else:
        assert (np.asarray(got).astype(str) == np.asarray(want).astype(str)).all(), case.name
    # one row: the runtime against onnxruntime on feeds built beforehand (the runtime's session options)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    raw = ort.InferenceSession((path / "model.onnx").read_bytes(), opts, providers=["CPUExecutionProvider"])
    feeds, _, _ = model._plan.feeds([one])
    label = [model._predict_names[0]]
    _calls(lambda: model.predict(one), 50)
    rt, rw = [], []
    for _ in range(5):
        rt += _calls(lambda: model.predict(one), calls)
        rw += _calls(lambda: raw.run(label, feeds), calls)
    # N rows
    parallel = _all_cores(pipe)
    cols = {k: frame[k].to_numpy() for k in frame.columns}
    batch = {"runtime": _best(lambda: model.predict(frame), reps), "sklearn": _best(lambda: pipe.predict(frame), reps),
             "sklearn_all": _best(lambda: parallel.predict(frame), reps)}
    quiet.__exit__(None, None, None)
    # files for the children
    pkl = out / "pipeline.pkl"
    pkl.write_bytes(pickle.dumps(pipe))
    npz = out / "cols.npz"
    cast(Any, np.savez)(npz, **{k: np.asarray(v, dtype=object if v.dtype.kind == "O" else None)
                                for k, v in cols.items()})
    frame.to_pickle(out / "frame.pkl")
    arg = json.dumps(one)
    start_rt = min(_child(RUNTIME_START, str(path), arg)[0] for _ in range(3))
    start_sk = min(_child(SKLEARN_START, str(pkl), arg)[0] for _ in range(3))
    mem_rt = int(_child(RUNTIME_CHILD, str(path), str(npz))[1].split()[0])
    mem_sk = int(_child(SKLEARN_CHILD, str(pkl), str(out / "frame.pkl"))[1].split()[0])
    first_web = browser(path) if browser is not None else None
    return {"case": case.name, "p50": _pct(rt, 0.5), "p99": _pct(rt, 0.99), "raw_p50": _pct(rw, 0.5),
            "raw_p99": _pct(rw, 0.99), "rows": rows, **batch, "start": start_rt, "start_sklearn": start_sk,
            "mem": mem_rt / 1024, "mem_sklearn": mem_sk / 1024, "onnx_mb": (path / "model.onnx").stat().st_size / 1e6,
            "ort_mb": (path / "model.ort").stat().st_size / 1e6, "pickle_mb": pkl.stat().st_size / 1e6,
            "web_first": first_web}


def browser_timer() -> tuple[Callable[[Path], float | None] | None, Any]:
    """(bundle -> seconds from navigation to the first prediction shown, context to close), or (None, None)."""
    from skedge.exporter.web import chromium, open_demo_page, web_unavailable
    from skedge.mobile_demo import DemoServer, site_files

    if web_unavailable() is not None:
        return None, None
    ctx_manager = chromium()
    context = ctx_manager.__enter__()

    def first_prediction(bundle: Path) -> float | None:
        with DemoServer(site_files(bundle), port=0) as server:
            t = time.perf_counter()
            try:
                page = open_demo_page(context, server.url)
            except Exception:  # a page that cannot show this model: reported as n/a, not a crash of the bench
                return None
            elapsed = time.perf_counter() - t
            page.close()
            return elapsed

    return first_prediction, ctx_manager


def render(results: list[dict[str, Any]], note: str) -> str:
    cpus = os.cpu_count()
    lines = [f"## Cost per census model (bench/bench_cost.py)\n\n{note}\n",
             f"| model | one row p50 / p99 (raw onnxruntime) | {results[0]['rows']:,} rows: runtime / sklearn "
             f"(1 job) / sklearn n_jobs={cpus} | fresh process: runtime / sklearn | peak memory load + predict: "
             "runtime / sklearn | model.onnx / model.ort / pickle | browser: page load to first prediction |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        web = f"{r['web_first']:.2f} s" if r["web_first"] is not None else "n/a"
        lines.append(
            f"| {r['case']} | {r['p50']:.1f} / {r['p99']:.1f} µs ({r['raw_p50']:.1f} / {r['raw_p99']:.1f} µs: "
            f"{r['p50'] / r['raw_p50']:.2f}x) | {r['runtime']:.3f} / {r['sklearn']:.3f} / {r['sklearn_all']:.3f} s "
            f"({r['runtime'] / r['sklearn_all']:.2f}x all cores) | {r['start']:.2f} / {r['start_sklearn']:.2f} s "
            f"({r['start'] / r['start_sklearn']:.2f}x) | {r['mem']:.0f} / {r['mem_sklearn']:.0f} MiB | "
            f"{r['onnx_mb']:.2f} / {r['ort_mb']:.2f} / {r['pickle_mb']:.2f} MB | {web} |")
    return "\n".join(lines) + "\n"


def write_doc(text: str) -> None:
    write_section(DOC, START, END, text)


def main(argv: list[str] | None = None) -> int:
    from tests.exporter.census import CASES, available

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--all", action="store_true", help="every census case, not the representative subset")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--calls", type=int, default=400, help="one-row calls per round (5 rounds)")
    p.add_argument("--reps", type=int, default=3, help="batch repeats (best of)")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--only", metavar="TEXT", help="the census cases whose name holds TEXT (nothing written: "
                   "docs/bench.md keeps a whole table)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 cases, 2,000 rows, no browser, nothing written")
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.calls, args.reps, args.no_browser, args.no_write = 2000, 50, 1, True, True
    before = os.getloadavg()[0]
    cases = [c for c in CASES() if available(c) and (args.all or args.only or c.name in SUBSET)]
    if args.only:
        cases, args.no_write = [c for c in cases if args.only in c.name], True
    if args.quick:
        cases = cases[:2]
    timer, ctx = (None, None) if args.no_browser else browser_timer()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="skedge-cost-") as tmp:
            for c in cases:
                print(f"{c.name} ...", flush=True)
                r = measure(c, Path(tmp), args.rows, args.calls, args.reps, timer)
                if r is not None:
                    results.append(r)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    import onnxruntime
    import sklearn

    load = f"{before:.1f} before the run, " + "/".join(f"{x:.1f}" for x in os.getloadavg())
    # the run itself keeps one or two cores busy: only what was there before it is someone else's work
    shared = " (a machine shared with other work: wall times are upper bounds)" if before > 1.0 else ""
    which = ("every census case skedge exports" if args.all and not args.only else f"those whose name holds "
             f"{args.only!r}" if args.only else f"the representative subset ({len(results)} cases)")
    note = (f"{date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, load average {load} at the "
            f"end{shared}, Python "
            f"{platform.python_version()}, onnxruntime {onnxruntime.__version__}, scikit-learn {sklearn.__version__}. "
            f"Cases: {which}. One row: median and 99th percentile of {5 * args.calls} calls; batches: best of "
            f"{args.reps}; fresh process: best of 3; peak memory: VmHWM of a child process that imports, loads "
            f"and predicts the {args.rows:,} rows (runtime: columns from .npz; sklearn: unpickle, a pickled "
            f"DataFrame); browser: headless Chromium on the demo page, navigation to the first prediction shown "
            f"(onnxruntime-web's wasm fetched from the local server, warm after the first case). "
            f"median one-row ratio to raw onnxruntime: "
            f"{statistics.median(r['p50'] / r['raw_p50'] for r in results):.2f}x.")
    body = render(results, note)
    print(body)
    if not args.no_write:
        write_doc(body)
        print(f"written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
