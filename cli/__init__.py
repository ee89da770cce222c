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
    "monitor": "skedge.cli._monitor",
    "explain": "skedge.cli._explain",
    "runs": "skedge.cli._runs",
    "inspect": "skedge.cli._inspect",
    "supported": "skedge.cli._supported",
    "config-schema": "skedge.cli._config_schema",
    "demo": "skedge.cli._demo",
    # one module per family; its register() adds each of its commands once
    "keygen": "skedge.cli._sign",
    "sign": "skedge.cli._sign",
    "registry": "skedge.cli._registry",
    "publish": "skedge.cli._registry",
    "promote": "skedge.cli._registry",
    "rollback": "skedge.cli._registry",
    "history": "skedge.cli._registry",
    "ls": "skedge.cli._registry",
    "fsck": "skedge.cli._registry",
    "resolve": "skedge.cli._registry",
    "package": "skedge.cli._package",
    "serve": "skedge.cli._serve",
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
    for command in {id(p): p for p in sub.choices.values()}.values():  # an alias lists its parser twice
        # `skedge train c.toml --debug` as well as `skedge --debug train c.toml`; SUPPRESS keeps the
        # subcommand's default from overwriting a --debug given before it
        try:
            command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                 help="show the traceback instead of a one-line error")
        except argparse.ArgumentError:
            pass  # the command defines --debug itself
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure is one line on stderr and a non-zero exit (``--debug``: the traceback)."""
    from ._ui import describe_failure, fail, pipe_closed, stdout_closed, warnings_as_lines

    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(args.debug or os.environ.get("SKEDGE_DEBUG"))
    try:
        with warnings_as_lines():
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away (`| head -1`) shows here, inside the wrapper
        return code
    except BrokenPipeError as exc:
        if stdout_closed():
            return pipe_closed()
        if debug:
            raise
        return fail(describe_failure(exc, args.command))
    except KeyboardInterrupt:
        return fail("interrupted")
    except Exception as exc:  # the one error wrapper: skedge's own errors, and anything a library raised
        if debug:
            raise
        return fail(describe_failure(exc, args.command))


if __name__ == "__main__":
    sys.exit(main())
