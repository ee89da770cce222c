from __future__ import annotations

import argparse
from pathlib import Path

from ._ui import green, red, say, step


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check every exported target of a bundle against sklearn's answers",
                       description="Run the bundle's golden rows through every target it has and compare them with "
                                   "sklearn's answers. Never writes into the bundle: a read-only or signed bundle "
                                   "verifies as it is.",
                       epilog="example: skedge verify models/penguins/1.0.0 --web --report reports/penguins")
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--web", action="store_true", help="also run the golden rows in Chromium (onnxruntime-web)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write parity.md and parity.png into DIR, outside the bundle (default: no files)")
    p.add_argument("--registry", metavar="REG", help="BUNDLE is NAME@ALIAS or NAME@VERSION of this registry")
    p.add_argument("--trust", metavar="PUB", help="also require a valid signature.json by this public key "
                                                  "(checked first; no state is kept)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from skedge.runtime.registry import locate

    args.bundle = locate(args.bundle, getattr(args, "registry", None))
    if args.trust:
        from skedge.runtime.signing import read_signed

        with step("check the signature, then every file against it"):
            signed = read_signed(Path(args.bundle), args.trust)
        say(f"signed: {signed.manifest.get('name')} {signed.manifest.get('version')}, release {signed.release}, "
            f"key {signed.keyid[:12]}…")
    from skedge.exporter.parity import parity_table
    from skedge.exporter.verify import verify_bundle
    from skedge.runtime._bundle import read_bundle

    extra: tuple[str, ...] = ("web",) if args.web else ()
    if args.web:
        import skedge.exporter.web  # noqa: F401  (registers the web target)
    with step(f"run the golden rows through {', '.join(('every target', *extra))}"):
        rows = verify_bundle(args.bundle, extra=extra, report_dir=args.report)
    say(f"bundle {args.bundle}  sha256(manifest.json) {read_bundle(Path(args.bundle), verify_hashes=False).digest}")
    say(parity_table(rows))
    if args.report is not None:
        say(f"report: {args.report / 'parity.md'}, {args.report / 'parity.png'}")
    ok = all(r.passed for r in rows)
    say(green("parity: pass") if ok else red("parity: FAIL — the exported model does not answer like sklearn"))
    return 0 if ok else 2
