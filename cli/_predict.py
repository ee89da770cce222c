from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from skedge.runtime._predict_cli import add_predict_arguments, run_predict

    p = sub.add_parser("predict", help="score rows from a file with a bundle",
                       epilog="example: skedge predict models/penguins/1.0.0 --input rows.csv --output out.csv")
    add_predict_arguments(p)
    p.set_defaults(func=run_predict)
