from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a fitted pipeline saved with skops (never pickle)",
                       epilog="example: skedge export pipe.skops --sample rows.csv --name churn --version 1.0.0")
    p.add_argument("pipeline", help="a fitted scikit-learn Pipeline saved with skops.io.dump (.skops)")
    p.add_argument("--sample", required=True, help="representative input rows (.csv or .parquet)")
    p.add_argument("--reference", metavar="PATH", help="the rows the pipeline was trained on (.csv or .parquet), "
                                                       "for profile.json's drift reference (default: --sample)")
    p.add_argument("--name", required=True)
    p.add_argument("--version", dest="model_version", default="1.0.0")
    p.add_argument("--out", default="models")
    p.add_argument("--trust", action="append", default=[], metavar="TYPE",
                   help="a type skops may load beyond sklearn's own (e.g. mypkg.MyStep); repeatable")
    # by default a field is nullable where the fitted pipeline answers a missing value (asked of sklearn)
    p.add_argument("--nullable", action="append", default=[], metavar="FIELD",
                   help="accept a missing value in FIELD (refused if the pipeline cannot answer one); repeatable")
    p.add_argument("--not-nullable", action="append", default=[], metavar="FIELD",
                   help="refuse a missing value in FIELD although the pipeline could answer one; repeatable")
    p.set_defaults(func=run)


def _nullable(args: argparse.Namespace) -> dict[str, bool] | None:
    both = sorted(set(args.nullable) & set(args.not_nullable))
    if both:
        from skedge.runtime._errors import ExportError

        raise ExportError(f"field {both[0]!r} is given both --nullable and --not-nullable: choose one")
    given = {**{f: True for f in args.nullable}, **{f: False for f in args.not_nullable}}
    return given or None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skedge.exporter import export
    from skedge.exporter._schema import text_columns
    from skedge.exporter.skops_io import load_pipeline
    from skedge.trainer.data import load_table

    from ._ui import bold, say, step

    with step("load pipeline"):
        pipe = load_pipeline(Path(args.pipeline), trusted=tuple(args.trust))
        # columns the pipeline was fitted on as text are read as text (digit strings, leading zeros)
        sample = load_table(Path(args.sample), text=sorted(text_columns(pipe)))
        reference = load_table(Path(args.reference), text=sorted(text_columns(pipe))) if args.reference else None
    from skedge.exporter.progress import reporting, to_stderr

    with step("export and check parity"), reporting(to_stderr):  # a line per stage: a big forest takes minutes
        path = export(pipe, sample, args.out, name=args.name, version=args.model_version, nullable=_nullable(args),
                      reference=reference)
    say(bold(f"bundle: {path}"))
    from skedge.exporter.parity import left_out_warning
    from skedge.runtime._bundle import read_bundle

    bundle = read_bundle(path, verify_hashes=False)
    say(f"bundle id: sha256(manifest.json) {bundle.digest}")
    if (warning := left_out_warning(bundle.manifest)) is not None:
        say(warning)
    return 0
