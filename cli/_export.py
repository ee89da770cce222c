from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a fitted pipeline saved with skops (never pickle)",
                       epilog="example: skedge export pipe.skops --sample rows.csv --name churn --version 1.0.0")
    p.add_argument("pipeline", help="a fitted scikit-learn Pipeline saved with skops.io.dump (.skops)")
    p.add_argument("--sample", required=True, help="representative input rows (.csv or .parquet)")
    p.add_argument("--name", required=True)
    p.add_argument("--version", dest="model_version", default="1.0.0")
    p.add_argument("--out", default="models")
    p.add_argument("--trust", action="append", default=[], metavar="TYPE",
                   help="a type skops may load beyond sklearn's own (e.g. mypkg.MyStep); repeatable")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skedge.exporter import export
    from skedge.exporter.skops_io import load_pipeline
    from skedge.trainer.data import load_table

    from ._ui import bold, say, step

    with step("load pipeline"):
        pipe = load_pipeline(Path(args.pipeline), trusted=tuple(args.trust))
        sample = load_table(Path(args.sample))
    with step("export and check parity"):
        path = export(pipe, sample, args.out, name=args.name, version=args.model_version)
    say(bold(f"bundle: {path}"))
    return 0
