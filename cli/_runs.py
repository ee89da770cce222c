"""``skedge runs``: the prediction runs landed in a database (``skedge predict --output DB-URL``)."""

from __future__ import annotations

import argparse
from typing import Any

from ._ui import say


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list the prediction runs in a database; repair dead ones, promote one",
                       description="List the runs `skedge predict --output DB-URL` landed (a run left running by a "
                                   "process that died shows failed). --repair marks such runs failed and drops "
                                   "their staging rows; --promote RUN makes the view TABLE_current show RUN's rows.",
                       epilog="example: skedge runs --db sqlite:///preds.db\n"
                              "         skedge runs --db postgresql://app@db/preds --promote 3f2a9c1e0b7d4a65",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, metavar="DB-URL", help="sqlite:///path.db or postgresql://user@host/db")
    p.add_argument("--table", metavar="NAME", help="only the runs of this table")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--repair", action="store_true",
                   help="mark runs whose process died failed and drop their staging rows")
    g.add_argument("--promote", metavar="RUN", help="make TABLE_current show this (succeeded) run's rows")
    p.set_defaults(func=run)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def run(args: argparse.Namespace) -> int:
    from skedge.runtime.db import list_runs, promote_run, repair_runs

    if args.repair:
        repaired = repair_runs(args.db)
        say(f"repaired {len(repaired)} run(s) left running by a dead process"
            + (f": {', '.join(repaired)}" if repaired else ""))
    if args.promote is not None:  # "" is a run id that names no run, not "no --promote"
        promoted = promote_run(args.db, args.promote)
        say(f"promoted run {promoted.run_id}: {promoted.table}_current shows its {promoted.rows_out or 0:,} rows")
    runs = list_runs(args.db, table=args.table)
    if not runs:
        say("no runs")
        return 0
    head = ("run", "table", "model", "status", "rows", "started (UTC)", "finished (UTC)", "")
    rows = [(r.run_id, r.table, f"{r.model_name or '?'} {r.model_version or ''}".strip(),
             r.status + (" (dead process: --repair)" if r.abandoned else ""), f"{r.rows_out or 0:,}",
             _when(r.started_at), _when(r.finished_at),
             ("current" if r.current else "") + (", promoted" if r.promoted else "")) for r in runs]
    widths = [max(len(str(x[i])) for x in (head, *rows)) for i in range(len(head))]
    for line in (head, *rows):
        say("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    return 0
