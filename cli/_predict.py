from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from skedge.runtime._predict_cli import add_predict_arguments, run_predict

    p = sub.add_parser("predict", help="score rows from files with a bundle, here or on Dask",
                       epilog="example: skedge predict models/penguins/1.0.0 --input rows.csv --output out.csv\n"
                              "         skedge predict models/penguins/1.0.0 --input 'data/*.parquet' "
                              "--output preds/ --engine dask --workers 2",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_predict_arguments(p)
    p.set_defaults(func=run_predict)
