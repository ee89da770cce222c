"""``skedge monitor BUNDLE --input rows.csv``: the drift report of a file of new rows (table, and a plot)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="drift of new rows against the bundle's training profile (profile.json)",
                       epilog="example: skedge monitor models/penguins/1.0.0 --input new_rows.csv --plot drift.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle directory (exported with a profile.json)")
    p.add_argument("--input", "-i", required=True, metavar="PATH",
                   help="rows to check: a .csv, .jsonl or .parquet file, a directory of them, or a quoted glob")
    p.add_argument("--plot", metavar="PNG", help="also write the reference and these rows' shares per bin")
    p.add_argument("--json", action="store_true", help="print the report and the counts-only summary as JSON")
    p.add_argument("--check", action="store_true", help="exit with status 1 when anything drifted (for CI)")
    p.set_defaults(func=run)


def _cell(value: Any, limit: Any, rate: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.1%}" if rate else f"{value:.3f}"
    bound = f"{limit:.1%}" if rate else f"{limit:.3f}"
    return f"{text} (<= {bound})"


def run(args: argparse.Namespace) -> int:
    from skedge.runtime import load
    from skedge.runtime.monitor import drift_report, monitor_files, plot_drift

    from ._inspect import _table
    from ._ui import bold, red, say

    model = load(args.bundle)
    profile, summary = monitor_files(model, args.input)
    report = drift_report(profile, summary)
    if args.plot:
        plot_drift(profile, summary, args.plot)
    if args.json:
        say(json.dumps({"report": report, "summary": summary}, indent=2, sort_keys=True))
    else:
        rows = []
        for key, r in report.items():
            t = r["threshold"]
            rows.append([key, _cell(r["psi"], t["psi"]), _cell(r["js"], t["js"]), _cell(r["linf"], t["linf"]),
                         _cell(r["out_of_range"], t["out_of_range"], True), _cell(r["unseen"], t["unseen"], True),
                         _cell(r["missing"], t["missing"], True),
                         red("drift: " + ", ".join(r["drifted"])) if r["drift"] else "ok"])
        say(bold(f"{model.name} {model.version}") + f"  {summary['rows']:,} rows of {args.input} against the "
            "training profile (thresholds calibrated for this many rows)")
        say(_table(["", "psi", "js", "linf", "out of range", "unseen", "missing", "drift"], rows))
        drifted = [k for k, r in report.items() if r["drift"]]
        say(f"drift in: {', '.join(drifted)}" if drifted else "no drift")
        if args.plot:
            say(f"plot: {args.plot}")
    return 1 if args.check and any(r["drift"] for r in report.values()) else 0
