"""``python -m skedge.runtime predict BUNDLE --input rows.csv``: score files with the runtime alone.

CSV and JSONL need nothing more; Parquet needs pyarrow, ``--engine dask`` the ``dask`` extra.
"""

from __future__ import annotations

import argparse
import sys

from ._errors import SkedgeError
from ._predict_cli import add_predict_arguments, run_predict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skedge.runtime",
                                     description="Score rows with a skedge bundle (runtime only: numpy + onnxruntime).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="score .csv, .jsonl or .parquet files",
                       epilog="example: python -m skedge.runtime predict models/penguins/1.0.0 --input rows.csv")
    add_predict_arguments(p)
    args = parser.parse_args(argv)
    try:
        return run_predict(args)
    except (SkedgeError, OSError, ImportError) as exc:  # ImportError: an optional dependency, named
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
