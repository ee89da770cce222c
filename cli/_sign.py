"""``skedge keygen`` and ``skedge sign``: Ed25519 keys and signed bundles (skedge.runtime.signing)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    if "keygen" not in sub.choices:
        p = sub.add_parser("keygen", help="make an Ed25519 key pair for signing bundles and alias moves",
                           epilog="example: skedge keygen --out keys   # keys/skedge.key (0600), keys/skedge.pub")
        p.add_argument("--out", required=True, metavar="DIR", help="directory for skedge.key and skedge.pub")
        p.set_defaults(func=run_keygen)
    if "sign" not in sub.choices:
        p = sub.add_parser("sign", help="add signature.json to a bundle (changes no other file)",
                           epilog="example: skedge sign models/penguins/1.0.0 --key keys/skedge.key "
                                  "--expires 2027-06-01")
        p.add_argument("bundle", help="bundle directory")
        p.add_argument("--key", required=True, help="private key (skedge keygen)")
        p.add_argument("--release", type=int, help="release number, only ever growing (default: from the version)")
        p.add_argument("--expires", metavar="ISO-TIME", help="after this time the signature is refused")
        p.set_defaults(func=run_sign)


def run_keygen(args: argparse.Namespace) -> int:
    from skedge.runtime.signing import generate_keypair

    from ._ui import say

    priv, pub = generate_keypair(args.out)
    say(f"private key: {priv} (keep it secret; mode 0600)")
    say(f"public key:  {pub} (give it to readers: --trust / load(..., trust=))")
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from skedge.runtime import ConfigError
    from skedge.runtime.signing import parse_time, sign_bundle, utc_now

    from ._ui import say

    expires = parse_time(args.expires) if args.expires else None
    if expires is not None and expires <= utc_now():
        raise ConfigError(f"--expires {args.expires} is already past: every load would refuse that signature; "
                          "give a time in the future")
    out = sign_bundle(args.bundle, args.key, release=args.release, expires=expires)
    say(f"signed: {out}")
    return 0
