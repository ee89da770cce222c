"""``skedge serve``: the model behind a REST API (skedge.serve, the ``serve`` extra)."""

from __future__ import annotations

import argparse

from skedge.runtime import ConfigError


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().removesuffix("b")
    mult = units.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if t[-1:] in units else t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size in bytes: {text!r} (e.g. 10000000 or 10MB)") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a bundle over HTTP: /predict, /health, /model, /metrics, /docs",
                       epilog="example: skedge serve models/penguins/1.0.0 --port 8000\n"
                              "         skedge serve penguins@prod --registry reg --api-key-env SKEDGE_API_KEY",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle directory, or NAME@ALIAS with --registry")
    p.add_argument("--registry", metavar="REG", help="BUNDLE is NAME@ALIAS (or NAME@VERSION) of this registry")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="processes, each with its own copy of the model")
    p.add_argument("--api-key-env", metavar="VAR", help="every route but /health needs the key held in $VAR")
    p.add_argument("--max-body", type=_size, default=10 * 1024 * 1024, metavar="BYTES",
                   help="largest request body (default 10MB); larger: 413")
    p.add_argument("--trust", metavar="PUB", help="the bundle must be signed by this Ed25519 public key")
    p.add_argument("--target", choices=("onnx", "ort"), default="onnx", help="which model file to serve")
    p.add_argument("--every", type=float, default=30.0, metavar="SECONDS",
                   help="with --registry: how often to check the alias for a new version")
    p.add_argument("--access-log", action="store_true", help="log every request (off: /metrics counts them)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        from skedge.serve import ServeConfig, serve
    except ImportError as exc:
        raise ImportError(f"skedge serve needs the serve extra: pip install 'skedge[serve]' ({exc})") from None
    if args.every <= 0:
        raise ConfigError(f"--every must be more than 0 seconds, got {args.every}")
    return serve(ServeConfig(source=args.bundle, registry=args.registry, host=args.host, port=args.port,
                             workers=args.workers, api_key_env=args.api_key_env, max_body=args.max_body,
                             trust=args.trust, target=args.target, access_log=args.access_log,
                             every=args.every))
