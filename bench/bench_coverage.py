"""Pipelines the field's converters carry (issue 12): export time, one row and 100,000 rows.

For a 500-tree forest (skedge's own tree converter and its full threshold sweep), a TF-IDF text pipeline and a
300-round XGBoost model in a Pipeline (through onnxmltools): the time
``skedge.exporter.build`` takes (conversion, sweep, parity check), then one-row latency (p50) of skedge's
``Model.predict(dict)``, raw ``InferenceSession.run`` on prepared feeds and sklearn's ``predict`` on a one-row
DataFrame, and 100,000 rows through each. Answers are checked before they are timed. A pipeline skedge refuses
is reported with its reason (a refusal is a result).

    python bench/bench_coverage.py            # full run, writes its section of docs/bench.md
    python bench/bench_coverage.py --quick    # 10,000 rows, fewer repeats, nothing written
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from docsection import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "bench.md"
START, END = "<!-- bench_coverage:start -->", "<!-- bench_coverage:end -->"


def _text(n: int) -> tuple[pd.DataFrame, pd.Series]:
    from tests.exporter.census import _text as small

    X, y = small()
    reps = -(-n // len(X))
    return pd.concat([X] * reps, ignore_index=True).head(n), pd.concat([y] * reps, ignore_index=True).head(n)


def _cases(trees: int) -> list[tuple[str, Callable[[], tuple[Any, pd.DataFrame, pd.Series]]]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def tfidf() -> tuple[Any, pd.DataFrame, pd.Series]:
        X, y = _text(240)
        pipe = make_pipeline(ColumnTransformer([("tfidf", TfidfVectorizer(), "review")]), LogisticRegression())
        return pipe.fit(X, y), X, y

    def xgb() -> tuple[Any, pd.DataFrame, pd.Series]:
        from xgboost import XGBClassifier

        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        X.columns = [c.replace(" ", "_") for c in X.columns]
        pipe = make_pipeline(StandardScaler(), XGBClassifier(n_estimators=300, max_depth=4, n_jobs=1,
                                                             random_state=0))
        return pipe.fit(X, y), X, y

    def forest() -> tuple[Any, pd.DataFrame, pd.Series]:
        from sklearn.ensemble import RandomForestClassifier

        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        X.columns = [c.replace(" ", "_") for c in X.columns]
        return RandomForestClassifier(n_estimators=trees, max_depth=10, n_jobs=1, random_state=0).fit(X, y), X, y

    return [(f"RandomForestClassifier ({trees} trees)", forest), ("TF-IDF + LogisticRegression", tfidf),
            ("StandardScaler + XGBClassifier (300 rounds)", xgb)]


def _p50(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _timed(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Best of a few runs: the first big batch also pays for allocating its buffers."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run_case(name: str, make: Callable[[], tuple[Any, pd.DataFrame, pd.Series]], rows: int, repeats: int) -> str:
    import onnxruntime as ort

    from skedge.exporter import build
    from skedge.runtime import SkedgeError
    from skedge.runtime._model import Model

    pipe, X, _ = make()
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exported = build(pipe, X, name="bench", targets=("onnx",))
    except SkedgeError as exc:
        return f"| {name} | refused: {str(exc).splitlines()[0][:140]} | | | | | | |"
    export_s = time.perf_counter() - t
    from skedge.runtime._schema import Schema

    schema = Schema.from_json(exported.manifest["schema"])
    model = Model(exported.files["model.onnx"], schema, source=Path("model.onnx"), target="onnx")
    big = pd.concat([X] * (-(-rows // len(X))), ignore_index=True).head(rows)
    labels = model.predict(big)
    assert (np.asarray(labels).astype(str) == np.asarray(pipe.predict(big)).astype(str)).all(), "wrong answers"
    row = X.iloc[0].to_dict()
    one = X.head(1)
    sess = ort.InferenceSession(exported.files["model.onnx"], providers=["CPUExecutionProvider"])
    feeds_one = {f.name: np.asarray([[row[f.name]]], dtype=np.float64 if f.kind != "category" else object)
                 for f in schema.features}
    feeds_big = {f.name: big[[f.name]].to_numpy(np.float64 if f.kind != "category" else object)
                 for f in schema.features}
    skedge_1 = _p50(lambda: model.predict(row), repeats)
    raw_1 = _p50(lambda: sess.run(None, feeds_one), repeats)
    sk_1 = _p50(lambda: pipe.predict(one), max(5, repeats // 10))
    skedge_n = _timed(lambda: model.predict(big))
    raw_n = _timed(lambda: sess.run(None, feeds_big))
    sk_n = _timed(lambda: pipe.predict(big))
    return (f"| {name} | {export_s:.1f} s | {skedge_1 * 1e6:,.0f} µs | {raw_1 * 1e6:,.0f} µs | {sk_1 * 1e6:,.0f} µs "
            f"| {skedge_n:.2f} s | {raw_n:.2f} s | {sk_n:.2f} s |")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    rows, repeats = (10_000, 30) if args.quick else (100_000, 300)
    lines = ["| pipeline | export (build, onnx) | skedge 1 row p50 | raw onnxruntime 1 row | sklearn 1 row "
             f"| skedge {rows:,} rows | raw onnxruntime | sklearn |", "|---|---|---|---|---|---|---|---|"]
    for name, make in _cases(50 if args.quick else 500):
        lines.append(run_case(name, make, rows, repeats))
        print(lines[-1], flush=True)
    if args.quick:
        return 0
    note = ("One process, this machine (2 cores, shared); export = `build(..., targets=('onnx',))` with its sweep "
            "and parity check; 1 row: median of calls; batches: best of 3. Answers checked against sklearn first.")
    write_section(DOC, START, END, "\n".join(["## Pipelines the field's converters carry (bench/bench_coverage.py)",
                                              "", note, "", *lines, ""]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
