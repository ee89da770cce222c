"""The ``skedge`` command: a thin layer over the public functions; it holds no logic of its own.

Commands are listed in ``COMMANDS`` (name -> module with ``register(subparsers)``), in one place.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from skedge import __version__

__all__ = ["main", "COMMANDS"]

COMMANDS = {
    "train": "skedge.cli._train",
    "export": "skedge.cli._export",
    "verify": "skedge.cli._verify",
    "predict": "skedge.cli._predict",
    "inspect": "skedge.cli._inspect",
    "config-schema": "skedge.cli._config_schema",
    "demo": "skedge.cli._demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skedge",
        description="Train a scikit-learn pipeline, export it with proven parity, predict on the device.",
        epilog="example: skedge train examples/penguins.toml --out models && skedge verify models/penguins/1.0.0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skedge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("skedge.cli"):
                continue  # a command that is not part of this build
            raise
    return parser


def main(argv: list[str] | None = None) -> int:
    from skedge.runtime import SkedgeError

    from ._ui import fail

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return fail("interrupted")
    except (SkedgeError, OSError, ImportError) as exc:
        if args.debug or os.environ.get("SKEDGE_DEBUG"):
            raise
        text = str(exc)
        return fail(text)


if __name__ == "__main__":
    sys.exit(main())
