"""``skedge package``: a bundle as a wheel and an npm tarball (skedge.exporter.package)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("package", help="build a wheel and an npm package of a bundle, for apps to depend on",
                       description="From a verified (and, with --trust, signed) bundle, write into DIR a wheel "
                                   "NAME==VERSION (needs skedge's runtime only) and an npm tarball of the same name "
                                   "and version (onnxruntime-node / onnxruntime-web, TypeScript types). Both are "
                                   "byte-reproducible. With --registry, a schema change over the previous version "
                                   "there needs a new major version.",
                       epilog="example: skedge package models/penguins/1.0.0 --out dist   "
                              "# dist/penguins_model-1.0.0-py3-none-any.whl, dist/penguins-model-1.0.0.tgz")
    p.add_argument("bundle", help="bundle directory (or NAME@VERSION / NAME@ALIAS with --registry)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the wheel and the tarball")
    p.add_argument("--name", metavar="DIST-NAME", help="package name (default: <model>-model, imported as "
                                                       "<model>_model)")
    p.add_argument("--trust", metavar="PUB", help="require a valid signature.json by this public key (checked "
                                                  "first; the signature is shipped in the wheel)")
    p.add_argument("--registry", metavar="REG", help="refuse a schema change over the previous version in REG "
                                                     "without a new major version")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skedge.exporter.package import package
    from skedge.runtime.registry import locate

    from ._ui import bold, say, step

    bundle = args.bundle if Path(args.bundle).is_dir() else locate(args.bundle, args.registry)
    with step("check the bundle, run its golden rows, build the wheel and the npm package"):
        built = package(bundle, args.out, name=args.name, trust=args.trust, registry=args.registry)
    say(bold(f"wheel: {built.wheel}"))
    say(bold(f"npm:   {built.npm}"))
    say(f"{built.name} {built.version} (import {built.module}; bundle id sha256(manifest.json) {built.digest})"
        + (", signed" if built.signed else ""))
    if built.previous is not None:
        say(f"schema: compared with {built.previous} in {args.registry}")
    return 0
