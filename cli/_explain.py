"""``skedge explain BUNDLE --input rows.csv``: each row's per-feature contributions, and their mean magnitude."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _positive(text: str) -> int:
    # --top 0 or -3 would slice the ranking to nothing and print rows with no contributions at all
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="per-feature contributions of rows (a bundle's explain.onnx)",
                       epilog="example: skedge explain models/penguins/1.0.0 --input rows.csv --top 3\n"
                              "         skedge explain models/penguins/1.0.0 --input rows.jsonl --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle directory (with explain.onnx)")
    p.add_argument("--input", required=True, metavar="FILE", help="rows to explain: .csv, .jsonl or .parquet")
    p.add_argument("--top", type=_positive, default=5, metavar="K", help="contributions shown per row (default 5)")
    p.add_argument("--rows", type=_positive, default=20, metavar="N", help="rows printed (default 20; all are summed)")
    p.add_argument("--class", dest="cls", metavar="CLASS",
                   help="the class whose probability is explained (default: each row's most probable)")
    p.add_argument("--json", action="store_true", help="one JSON object per row: output, bias, contributions")
    p.set_defaults(func=run)


def _class_index(classes: tuple[Any, ...] | None, cls: str | None) -> int | None:
    if cls is None:
        return None
    from skedge.runtime import SchemaError

    if classes is None:  # a regressor has one value to explain: --class was ignored without a word
        raise SchemaError(f"--class {cls!r}: this model has no classes (it explains one value per row)")
    names = [str(c) for c in classes]
    if cls not in names:
        raise SchemaError(f"--class {cls!r} is not a class of this model; its classes: {', '.join(names)}")
    return names.index(cls)


def run(args: argparse.Namespace) -> int:
    from skedge.runtime import SchemaError, load
    from skedge.runtime._batch import feature_columns
    from skedge.runtime._files import iter_chunks
    from skedge.runtime._jobs import _in_file

    from ._ui import say

    model = load(args.bundle)
    k = _class_index(model.classes, args.cls)
    total: np.ndarray | None = None
    n_rows = shown = 0
    features: tuple[str, ...] = ()
    for chunk in iter_chunks(Path(args.input), model.schema):
        if chunk.n == 0:
            continue
        try:
            # a Parquet chunk is pyarrow arrays, which explain's row reader does not take: read as the batch scorer does
            ex = model.explain(feature_columns(chunk.features, model.schema))
        except SchemaError as exc:
            # as `skedge predict` says it: the file named, the row counted from its start rather than the chunk's
            raise _in_file(exc, Path(args.input), chunk.offset) from None
        features = ex.features
        mag = np.abs(ex.contributions)
        part = mag.mean(axis=2).sum(axis=0) if mag.ndim == 3 else mag.sum(axis=0)
        total = part if total is None else total + part
        n_rows += chunk.n
        for i in range(chunk.n):
            if shown >= args.rows:
                break
            shown += 1
            row = chunk.offset + i
            if args.json:
                say(json.dumps({"row": row, "features": list(ex.features), "output": ex.output[i].tolist(),
                                "bias": ex.bias.tolist(), "contributions": ex.contributions[i].tolist(),
                                **({"classes": list(ex.classes)} if ex.classes is not None else {})}))
                continue
            if ex.classes is not None:
                c = int(np.argmax(ex.output[i])) if k is None else k
                head = f"row {row}: p({ex.classes[c]}) = {ex.output[i, c]:.4f} = bias {ex.bias[c]:.4f}"
            else:
                c = None
                head = f"row {row}: value {float(ex.output[i]):.6g} = bias {float(ex.bias):.6g}"
            parts = [f"{name} {v:+.4g}" for name, v in ex.ranked(i, c)[:args.top]]
            say(head + " | " + ", ".join(parts))
    if total is None or args.json:
        if total is None:
            say("no rows to explain")
        return 0
    say("")
    say(f"mean |contribution| over {n_rows} rows" + (" (and the classes)" if model.classes is not None else ""))
    for i in np.argsort(-total, kind="stable"):
        say(f"  {features[i]:<24} {total[i] / n_rows:.4g}")
    return 0
