"""What the bootstrap intervals cost (issue 14): skedge's weight-matrix bootstrap against a loop over resamples
calling sklearn.metrics, side by side in one process, on the same answers.

Cases: the penguins forest's holdout (69 rows, trained from examples/penguins.toml) and synthetic 3-class
holdouts of 2,000 and 20,000 rows. Both sides compute every classification metric (accuracy, balanced accuracy,
F1 macro, log loss, ROC-AUC and PR-AUC one-vs-rest, Brier) for 1,000 resamples; the loop is timed on a sample of
resamples and scaled. Answers are checked first: the two agree on each sampled resample. Writes its section of
docs/bench.md.

    python bench/bench_evaluation.py            # about a minute on 2 cores
    python bench/bench_evaluation.py --quick    # fewer loop resamples, nothing written
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from docsection import write_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bench.md"
START, END = "<!-- bench_evaluation:start -->", "<!-- bench_evaluation:end -->"
RESAMPLES = 1000


def _sklearn_all(y: np.ndarray, p: np.ndarray, pred: np.ndarray, k: int) -> list[float]:
    from sklearn import metrics as skm
    from sklearn.preprocessing import label_binarize

    labels = list(range(k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [skm.accuracy_score(y, pred), skm.balanced_accuracy_score(y, pred),
                skm.f1_score(y, pred, average="macro"), skm.log_loss(y, p, labels=labels),
                skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels),
                skm.average_precision_score(label_binarize(y, classes=labels), p, average="macro"),
                skm.brier_score_loss(y, p, labels=labels)]


def _penguins() -> object:
    from skedge.trainer import load_config
    from skedge.trainer.metrics import answers_for
    from skedge.trainer.train import fit

    pipe, info = fit(load_config(ROOT / "examples" / "penguins.toml"))
    return answers_for("classification", pipe, info["holdout"], info["holdout_target"],
                       tuple(str(c) for c in pipe.classes_))


def _synthetic(n: int) -> object:
    from skedge.trainer.metrics import Answers

    rng = np.random.default_rng(n)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.2 * (y[:, None] == np.arange(3))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Answers("classification", y, p.argmax(axis=1), p, ("a", "b", "c"))


def measure(a: object, loop_resamples: int) -> tuple[float, float]:
    from skedge.trainer.intervals import Bootstrap, resampled, weights
    from skedge.trainer.metrics import METRICS

    boot = Bootstrap(resamples=RESAMPLES, seed=0)
    t = time.perf_counter()
    ours = resampled({"m": a}, boot)["m"]  # type: ignore[dict-item]
    vectorised = time.perf_counter() - t
    W = next(weights(len(a), boot))[:loop_resamples]  # type: ignore[arg-type]
    k = len(a.classes)  # type: ignore[attr-defined]
    _sklearn_all(a.y, a.proba, a.pred, k)  # type: ignore[attr-defined]  # warm: first calls import and cache
    t = time.perf_counter()
    for b in range(len(W)):
        rows = np.repeat(np.arange(len(W[b])), W[b].astype(int))
        ref = _sklearn_all(a.y[rows], a.proba[rows], a.pred[rows], k)  # type: ignore[attr-defined]
        got = [ours[m][b] for m in ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc", "pr_auc",
                                    "brier")]
        assert np.allclose(got, ref, rtol=1e-9, atol=1e-12), (got, ref)
    loop = (time.perf_counter() - t) / len(W) * RESAMPLES
    assert set(ours) == set(METRICS["classification"])
    return vectorised, loop


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer loop resamples, nothing written")
    args = p.parse_args(argv)
    loop_n = 10 if args.quick else 50
    cases = [("penguins holdout (forest)", _penguins()), ("synthetic, 3 classes", _synthetic(2_000)),
             ("synthetic, 3 classes", _synthetic(20_000))]
    lines = ["## Bootstrap intervals (bench/bench_evaluation.py)", "",
             f"Every classification metric for {RESAMPLES:,} resamples of the holdout: skedge's weight matrix "
             f"(`trainer/intervals.py`, what training runs) against a loop calling sklearn.metrics on each "
             f"resample (timed on {loop_n} resamples, scaled to {RESAMPLES:,}); the two agree on every sampled "
             "resample.", "",
             "| holdout | rows | skedge | sklearn loop | ratio |", "|---|---|---|---|---|"]
    for name, a in cases:
        vec, loop = measure(a, loop_n)
        shown = f"{vec * 1000:.0f} ms" if vec < 1 else f"{vec:.2f} s"
        row = f"| {name} | {len(a):,} | {shown} | {loop:.1f} s | {loop / vec:.0f}× faster |"  # type: ignore[arg-type]
        print(row, flush=True)
        lines.append(row)
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", f"{os.cpu_count()} cores, load average {load} at the end (the machine is shared: absolute "
                  "times vary, the ratio less)."]
    text = "\n".join(lines)
    if not args.quick:
        write_section(DOC, START, END, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
