from __future__ import annotations

import argparse

from ._ui import bold, say, step


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train from a config, export, check parity, write a bundle",
                       epilog="example: skedge train examples/penguins.toml --out models")
    p.add_argument("config", help="a .toml or .yaml training config")
    p.add_argument("--out", default="models", help="where bundles go (default: models)")
    p.add_argument("--version", dest="model_version", help="override the config's version")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from skedge.exporter.progress import reporting, to_stderr
    from skedge.trainer import train

    with reporting(to_stderr):  # a line per export stage: a 2,000-tree forest takes minutes to export
        result = train(args.config, args.out, version=args.model_version, step=step)
    say(bold(f"bundle: {result.path}"))
    from skedge.runtime._bundle import read_bundle

    say(f"  bundle id: sha256(manifest.json) {read_bundle(result.path, verify_hashes=False).digest}")
    for k, v in result.metrics.items():
        if isinstance(v, float):
            say(f"  {k}: {v:.4f}")
    for r in result.parity:
        agree = "" if r.label_agreement is None else f"labels {r.label_agreement:.0%}, "
        say(f"  parity {r.target}: {agree}max abs diff {r.max_abs_diff:.2g} ({'pass' if r.passed else 'FAIL'})")
    say(f"  report: {result.path / 'card.md'}")
    import json

    from skedge.exporter.parity import left_out_warning

    if (warning := left_out_warning(json.loads((result.path / "manifest.json").read_text()))) is not None:
        say(warning)
    return 0
