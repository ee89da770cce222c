from __future__ import annotations

import argparse
from pathlib import Path

from ._ui import green, red, say, step


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check every exported target of a bundle against sklearn's answers",
                       epilog="example: skedge verify models/penguins/1.0.0 --web")
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--web", action="store_true", help="also run the golden rows in Chromium (onnxruntime-web)")
    p.add_argument("--report", type=Path, help="where parity.md and parity.png go (default <bundle>/report/verify)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from skedge.exporter.parity import parity_table
    from skedge.exporter.verify import verify_bundle

    extra: tuple[str, ...] = ("web",) if args.web else ()
    if args.web:
        import skedge.exporter.web  # noqa: F401  (registers the web target)
    with step(f"run the golden rows through {', '.join(('every target', *extra))}"):
        rows = verify_bundle(args.bundle, extra=extra, report_dir=args.report)
    say(parity_table(rows))
    ok = all(r.passed for r in rows)
    say(green("parity: pass") if ok else red("parity: FAIL — the exported model does not answer like sklearn"))
    return 0 if ok else 2
