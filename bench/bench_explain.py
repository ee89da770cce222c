"""What explanations cost, and why they live in a file of their own (issue 14), side by side in one process.

The penguins bundle (100-tree forest behind a ColumnTransformer), one session each, one thread:

* ``predict``: ``Model.predict_proba`` on model.onnx (the prediction graph, unchanged by explanations);
* ``model.onnx, raw``: the bare session on model.onnx (feeds prepared beforehand);
* ``output only``: explain.onnx asked for its ``output`` (the probabilities) alone: what predict would cost if
  the contributions were an extra output of the prediction graph and onnxruntime had to skip them;
* ``explain``: ``Model.explain`` (contributions, bias, output).

One row (p50 of interleaved calls) and a 10,000-row batch (best of 5). Answers are checked first: explain's
output equals predict_proba and adds up. Writes its section of docs/bench.md.

    python bench/bench_explain.py            # ~1 minute on 2 cores
    python bench/bench_explain.py --quick    # fewer calls, nothing written
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from docsection import write_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bench.md"
START, END = "<!-- bench_explain:start -->", "<!-- bench_explain:end -->"


def _session(data: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def _p50(fns: dict[str, Any], calls: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(calls):  # interleaved: a busy moment of the machine hits every column alike
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in samples.items()}


def _best(fns: dict[str, Any], reps: int) -> dict[str, float]:
    best = {k: float("inf") for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def _model_onnx_unchanged(pipeline: Any) -> bool:
    """Export the pipeline with and without the explanation step: model.onnx must be the same bytes (so predict
    is what it was before explanations existed)."""
    import skedge.exporter._export as ex
    from skedge.exporter.explain import Explained

    sample = pd.read_csv(ROOT / "examples" / "penguins.csv")[list(pipeline.feature_names_in_)]
    with_explain = ex.build(pipeline, sample, name="penguins", targets=("onnx",)).files
    real = ex.build_explanations
    ex.build_explanations = lambda *a, **k: Explained()  # type: ignore[assignment]
    try:
        without = ex.build(pipeline, sample, name="penguins", targets=("onnx",)).files
    finally:
        ex.build_explanations = real
    assert "explain.onnx" in with_explain and "explain.onnx" not in without
    return with_explain["model.onnx"] == without["model.onnx"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    from skedge.runtime import load
    from skedge.runtime._schema import InputPlan
    from skedge.trainer import train

    with tempfile.TemporaryDirectory() as work:
        result = train(ROOT / "examples" / "penguins.toml", Path(work) / "models")
        bundle = result.path
        same = _model_onnx_unchanged(result.pipeline)
        model = load(bundle, threads=1)
        names = list(model.schema.names)
        data = pd.read_csv(ROOT / "examples" / "penguins.csv")[names]
        row = {k: (None if pd.isna(v) else v) for k, v in data.dropna().iloc[0].items()}
        n = 2_000 if args.quick else 10_000
        frame = data.iloc[np.random.default_rng(0).integers(0, len(data), n)].reset_index(drop=True)
        ex = model.explain(frame)
        assert np.max(np.abs(ex.output - model.predict_proba(frame))) <= 1e-12
        assert np.max(np.abs(ex.bias + ex.contributions.sum(axis=1) - ex.output)) <= 1e-6
        sizes = {f: (bundle / f).stat().st_size for f in ("model.onnx", "explain.onnx")}
        explain_sess = _session((bundle / "explain.onnx").read_bytes())
        predict_sess = _session((bundle / "model.onnx").read_bytes())
        plan = InputPlan(model.schema)
        feeds_one, _, _ = plan.feeds(row)
        feeds_many, _, _ = plan.feeds(frame)
        calls = 300 if args.quick else 3000
        one = _p50({"predict": lambda: model.predict_proba(row),
                    "model.onnx, raw": lambda: predict_sess.run(["probabilities"], feeds_one),
                    "output only": lambda: explain_sess.run(["output"], feeds_one),
                    "explain": lambda: model.explain(row)}, calls)
        many = _best({"predict": lambda: model.predict_proba(frame),
                      "model.onnx, raw": lambda: predict_sess.run(["probabilities"], feeds_many),
                      "output only": lambda: explain_sess.run(["output"], feeds_many),
                      "explain": lambda: model.explain(frame)}, 2 if args.quick else 5)
    lines = [
        "## Explanations (bench/bench_explain.py)", "",
        f"penguins bundle (100-tree forest, 7 fields), one thread; model.onnx {sizes['model.onnx'] / 1e3:.0f} kB, "
        f"explain.onnx {sizes['explain.onnx'] / 1e3:.0f} kB.", "",
        f"| | one row, p50 | {n:,} rows, best | vs predict (one row / batch) |", "|---|---|---|---|",
    ]
    for k in ("predict", "model.onnx, raw", "output only", "explain"):
        lines.append(f"| {k} | {one[k] * 1e6:.0f} µs | {many[k]:.3f} s | "
                     f"{one[k] / one['predict']:.2f}× / {many[k] / many['predict']:.2f}× |")
    lines.insert(4, f"model.onnx exported with and without the explanation step: "
                    f"{'byte-identical' if same else 'DIFFERENT'}.")
    lines.insert(5, "")
    ratio = many["output only"] / many["model.onnx, raw"]
    pruned = ratio <= 1.2
    lines += ["", "`model.onnx, raw` and `output only` are bare `InferenceSession.run` calls on prepared feeds: the "
              "prediction graph, and explain.onnx asked for its probabilities alone (what predict would cost if "
              "the contributions were an extra output of model.onnx). " + (
                  "onnxruntime skipped the contribution nodes a fetch does not need here." if pruned else
                  f"onnxruntime runs the contribution ensemble anyway ({ratio:.2f}× "
                  "the prediction graph on the batch): it does not prune nodes a fetch does not need.") +
              " So explain.onnx is a file of its own; model.onnx is the graph it was before explanations, and "
              "predict costs what it did."]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        write_section(DOC, START, END, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
