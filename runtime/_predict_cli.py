"""``predict``: score a file with a bundle, for both ``skedge predict`` and ``python -m skedge.runtime``.

Lives in the runtime so that a runtime-only install can score files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ._files import read_rows
from ._model import load

__all__ = ["add_predict_arguments", "run_predict", "prediction_columns"]


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle directory (or a .onnx/.ort file exported by skedge)")
    p.add_argument("--input", "-i", required=True, help="rows to score: .csv or .jsonl")
    p.add_argument("--output", "-o", help="write predictions here (.csv or .jsonl); default: print CSV")
    p.add_argument("--keep", action="append", default=[], metavar="COL",
                   help="carry an input column through to the output (an id); repeatable")
    p.add_argument("--target", default="onnx", choices=["onnx", "ort"], help="which model file of the bundle")


def prediction_columns(model: Any, rows: Any) -> dict[str, list[Any]]:
    """The output columns: prediction, plus proba_<class> (classifiers) or score (anomaly)."""
    out = model.predict_outputs(rows)
    task = model.schema.task
    cols: dict[str, list[Any]] = {}
    if task == "regression":
        cols["prediction"] = np.asarray(out["value"]).tolist()
    else:
        cols["prediction"] = [v.item() if hasattr(v, "item") else v for v in out["label"]]
    if task == "classification":
        proba = np.asarray(out["probabilities"])
        for j, c in enumerate(model.classes or ()):
            cols[f"proba_{c}"] = proba[:, j].tolist()
    if task == "anomaly":
        cols["score"] = np.asarray(out["score"]).tolist()
    return cols


def _write(cols: dict[str, list[Any]], dest: str | None) -> None:
    names = list(cols)
    n = len(cols[names[0]]) if names else 0
    if dest and dest.endswith(".jsonl"):
        buf = io.StringIO()
        for i in range(n):
            buf.write(json.dumps({k: cols[k][i] for k in names}) + "\n")
        text = buf.getvalue()
    else:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(names)
        for i in range(n):
            w.writerow([cols[k][i] for k in names])
        text = buf.getvalue()
    if dest:
        tmp = Path(dest + ".partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(dest)  # never leave a half-written output behind
    else:
        sys.stdout.write(text)


def run_predict(args: argparse.Namespace) -> int:
    model = load(args.bundle, target=args.target)
    rows, carried = read_rows(Path(args.input), model.schema, keep=tuple(args.keep))
    cols = {**carried, **prediction_columns(model, rows)}
    _write(cols, args.output)
    if args.output:
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    return 0
