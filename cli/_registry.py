"""The registry commands: registry init / export-static, publish, promote, rollback, history, ls, fsck, resolve."""

from __future__ import annotations

import argparse
import json
from typing import Any

_REG = {"required": True, "metavar": "REG", "help": "registry directory"}


def register(sub: argparse._SubParsersAction) -> None:
    if "registry" in sub.choices:
        return
    p = sub.add_parser("registry", help="create a registry (a directory; no server)",
                       epilog="example: skedge registry init reg --require-signatures keys/skedge.pub")
    inner = p.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    i = inner.add_parser("init", help="create a registry", epilog="example: skedge registry init reg")
    i.add_argument("registry", metavar="REG")
    i.add_argument("--require-signatures", metavar="PUB", help="accept only bundles and alias moves signed by this key")
    i.set_defaults(func=run_init)
    e = inner.add_parser("export-static", help="write a signed channel per alias and its bundles, for any web server",
                         epilog="example: skedge registry export-static --registry reg penguins --out site --key "
                                "keys/skedge.key")
    e.add_argument("name")
    e.add_argument("--registry", **_REG)
    e.add_argument("--out", required=True, metavar="DIR", help="the folder to serve (updated in place)")
    e.add_argument("--key", help="sign each channel.json (required for a registry that requires signatures)")
    e.add_argument("--alias", action="append", default=None, help="only this alias (repeatable; default: all)")
    e.add_argument("--expires", metavar="ISO-TIME", help="devices refuse the channel after this time")
    e.add_argument("--rollout", type=float, metavar="SHARE", help="share of devices that take the holder (0..1); "
                                                                  "the others keep the previous one")
    e.set_defaults(func=run_export_static)

    p = sub.add_parser("publish", help="store a bundle in a registry (immutable, content-addressed)",
                       epilog="example: skedge publish models/penguins/1.0.0 --registry reg")
    p.add_argument("bundle")
    p.add_argument("--registry", **_REG)
    p.set_defaults(func=run_publish)

    p = sub.add_parser("promote", help="move an alias to a version, gated on the alias's current holder",
                       epilog="example: skedge promote penguins@1.1.0 --alias prod --registry reg --data bench.csv")
    p.add_argument("ref", metavar="NAME@VERSION")
    p.add_argument("--alias", required=True)
    p.add_argument("--registry", **_REG)
    p.add_argument("--data", metavar="FILE", help="labelled rows (CSV/JSONL/Parquet with the target column); kept as "
                                                  "the fixed benchmark set that later promotions reuse")
    p.add_argument("--target", metavar="COLUMN", help="the target column, when the file has more than one extra")
    p.add_argument("--max-drop", action="append", default=[], metavar="METRIC=VALUE",
                   help="allowed drop of a metric (repeatable); default accuracy/r2/anomaly_rate_gap=0.01")
    p.add_argument("--force", action="store_true", help="promote even if the gate refuses (needs --reason)")
    p.add_argument("--reason", help="why: kept in the log")
    p.add_argument("--key", help="sign the alias record (required by a registry that requires signatures)")
    p.set_defaults(func=run_promote)

    p = sub.add_parser("rollback", help="move an alias back to the version that held it before",
                       epilog="example: skedge rollback penguins --alias prod --registry reg")
    p.add_argument("name")
    p.add_argument("--alias", required=True)
    p.add_argument("--registry", **_REG)
    p.add_argument("--reason")
    p.add_argument("--key")
    p.set_defaults(func=run_rollback)

    p = sub.add_parser("history", help="who held an alias when, with the gate reports",
                       epilog="example: skedge history penguins --registry reg --at 2026-12-01T10:00")
    p.add_argument("name")
    p.add_argument("--registry", **_REG)
    p.add_argument("--alias")
    p.add_argument("--at", metavar="ISO-TIME", help="who held each alias at that time (no zone: UTC)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_history)

    p = sub.add_parser("ls", help="models, versions and aliases of a registry",
                       epilog="example: skedge ls --registry reg")
    p.add_argument("--registry", **_REG)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_ls)

    p = sub.add_parser("fsck", help="check a registry; --repair removes what killed writers left",
                       epilog="example: skedge fsck --registry reg --repair")
    p.add_argument("--registry", **_REG)
    p.add_argument("--repair", action="store_true")
    p.set_defaults(func=run_fsck)

    p = sub.add_parser("resolve", help="print the bundle path and version NAME@ALIAS names",
                       epilog="example: skedge resolve penguins@prod --registry reg")
    p.add_argument("ref", metavar="NAME@ALIAS")
    p.add_argument("--registry", **_REG)
    p.set_defaults(func=run_resolve)


def run_init(args: argparse.Namespace) -> int:
    from skedge.registry import init_registry

    from ._ui import say

    root = init_registry(args.registry, require_signatures=args.require_signatures)
    say(f"registry: {root}" + (" (signed bundles and alias moves only)" if args.require_signatures else ""))
    return 0


def run_export_static(args: argparse.Namespace) -> int:
    from skedge.registry.static import export_static
    from skedge.runtime.signing import parse_time

    from ._ui import say

    done = export_static(args.registry, args.name, args.out, key=args.key, aliases=args.alias,
                         expires=parse_time(args.expires) if args.expires else None, rollout=args.rollout)
    for e in done:
        say(f"{args.name}@{e.alias} -> {e.version} (sequence {e.sequence}): {e.channel} "
            f"({e.files_written} bundle files written)")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from skedge.registry import publish

    from ._ui import say

    p = publish(args.bundle, args.registry)
    state = "published" if p.created else "already published (same content): nothing changed"
    say(f"{p.name}@{p.version} {state}: {p.path} (sha256 {p.digest[:12]}…{', signed' if p.signed else ''})")
    return 0


def _max_drop(items: list[str]) -> dict[str, float] | None:
    from skedge.runtime import GateError

    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise GateError(f"--max-drop {item!r}: expected METRIC=VALUE, e.g. accuracy=0.02") from None
        if not sep or not k.strip():
            raise GateError(f"--max-drop {item!r}: expected METRIC=VALUE, e.g. accuracy=0.02")
    return out or None


def run_promote(args: argparse.Namespace) -> int:
    from skedge.registry import parse_ref, promote

    from ._ui import say, yellow

    name, version = parse_ref(args.ref)
    m = promote(args.registry, name, version, args.alias, data=args.data, force=args.force, reason=args.reason,
                key=args.key, max_drop=_max_drop(args.max_drop), target=args.target)
    if m.gate is not None:
        for line in m.gate.lines():
            say(line)
    if not m.changed:
        say(f"{name}@{args.alias} is already {version}: nothing changed")
    elif m.gate is not None and not m.gate.passed:
        say(yellow(f"{name}@{args.alias} -> {version} FORCED past the gate (event {m.sequence}): {args.reason}"))
    else:
        say(f"{name}@{args.alias} -> {version} (was {m.previous or 'unset'}; event {m.sequence})")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from skedge.registry import rollback

    from ._ui import say

    m = rollback(args.registry, args.name, args.alias, key=args.key, reason=args.reason)
    say(f"{args.name}@{args.alias} rolled back: {m.previous} -> {m.version} (event {m.sequence})")
    return 0


def _gate_lines(gate: dict[str, Any] | None) -> list[str]:
    if not gate:
        return []
    from skedge.registry import GateReport, MetricDiff

    g = dict(gate)
    g["metrics"] = tuple(MetricDiff(**m) for m in g["metrics"])
    return ["    " + line for line in GateReport(**g).lines()]


def run_history(args: argparse.Namespace) -> int:
    from skedge.registry import history

    from ._ui import say

    out = history(args.registry, args.name, alias=args.alias, at=args.at)
    if args.json:
        say(json.dumps(out, indent=1, sort_keys=True))
        return 0
    if isinstance(out, dict):
        if not out:
            say(f"at {args.at} no version of {args.name} held {args.alias or 'any alias'}")
        for alias, version in out.items():
            say(f"{args.name}@{alias} at {args.at}: {version}")
        return 0
    for ev in out:
        extra = f"  FORCED: {ev.get('reason')}" if ev.get("forced") else (f"  ({ev['reason']})" if ev.get("reason")
                                                                           else "")
        say(f"{ev['sequence']:>4}  {ev['time']}  {ev['type']:<8} {ev['alias']}: {ev.get('previous') or '-'} -> "
            f"{ev['version']}  by {ev.get('user')}{extra}")
        for line in _gate_lines(ev.get("gate")):
            say(line)
    return 0


def run_ls(args: argparse.Namespace) -> int:
    from skedge.registry import listing

    from ._ui import say

    models = listing(args.registry)
    if args.json:
        say(json.dumps(models, indent=1, sort_keys=True))
        return 0
    if not models:
        say("the registry is empty")
    for m in models:
        aliases = ", ".join(f"{a}={v}" for a, v in m["aliases"].items()) or "no aliases"
        say(f"{m['name']}  ({aliases})")
        for v, claim in m["versions"].items():
            say(f"  {v:<12} sha256 {str(claim['digest'])[:12]}…  {claim.get('published')}"
                f"{'  signed' if claim.get('signed') else ''}")
    return 0


def run_fsck(args: argparse.Namespace) -> int:
    from skedge.registry import fsck

    from ._ui import say

    rep = fsck(args.registry, repair=args.repair)
    for p in rep.problems:
        say(f"problem: {p}")
    for r in rep.repairable:
        say(f"{'repaired' if r in rep.repaired else 'needs repair'}: {r}")
    say("consistent" if rep.consistent else
        "NOT consistent" + ("" if args.repair or rep.problems else ": run skedge fsck --repair"))
    return 0 if rep.consistent else 1


def run_resolve(args: argparse.Namespace) -> int:
    from skedge.registry import parse_ref, resolve

    from ._ui import say

    name, x = parse_ref(args.ref)
    r = resolve(args.registry, name, x)
    say(f"{r.path}\t{r.version}")
    return 0


def registry_summary(ref: str, registry: str) -> tuple[str, list[str]]:
    """For ``inspect NAME@ALIAS --registry REG``: the bundle path, and lines on how it came to hold the alias
    (the gate report of that promotion, the reason when it was forced)."""
    from skedge.runtime.registry import holder_event

    r, ev = holder_event(registry, ref)
    lines = [f"registry {registry}: {r.name}@{r.alias or r.version} is {r.version} (sha256 {r.digest[:12]}…)"]
    if ev is not None:
        p = ev.payload
        lines.append(f"  since event {p['sequence']} ({p['type']}, {p['time']}, by {p.get('user')})"
                     + (f", FORCED: {p.get('reason')}" if p.get("forced") else ""))
        lines += _gate_lines(p.get("gate")) or ["    no gate report (the first holder, or a rollback)"]
    return str(r.path), lines
