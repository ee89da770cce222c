from __future__ import annotations

import argparse
import json

from ._ui import say


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("supported", help="list who converts each class, per target",
                       description="For every class: converted by skedge's own exact converter, by the field's "
                                   "(skl2onnx, onnxmltools), or refused with the reason. Whatever converts it, "
                                   "an export is written only after its parity check passes.",
                       epilog="example: skedge supported --target onnx | grep -i svc")
    p.add_argument("--target", choices=("onnx", "coreml"), default="onnx", help="the target (default: onnx)")
    p.add_argument("--json", action="store_true", help="print JSON (a list of {name, who, note})")
    p.add_argument("--all", action="store_true", help="also list the refused / unavailable classes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from skedge.exporter.supported import supported

    entries = supported(args.target)
    shown = [e for e in entries if args.all or e.who not in ("refused", "unavailable")]
    if args.json:
        say(json.dumps([asdict(e) for e in shown], indent=1))
        return 0
    width = max((len(e.name) for e in shown), default=10)
    for e in shown:
        say(f"{e.name:<{width}}  {e.who}{'  ' + e.note if e.note else ''}")
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.who] = counts.get(e.who, 0) + 1
    tally = ", ".join(f"{n} {who}" for who, n in sorted(counts.items()))
    hint = "" if args.all else " (--all lists the refused ones with their reasons)"
    say(f"{args.target}: {tally}{hint}")
    return 0
