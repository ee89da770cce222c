from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show a bundle's schema, metrics, provenance and parity",
                       epilog="example: skedge inspect models/penguins/1.0.0 --json")
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=run)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(head)]
    out = [] if not any(head) else ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
                                    "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from skedge.runtime._bundle import read_bundle

    from ._ui import bold, say

    m = read_bundle(__import__("pathlib").Path(args.bundle)).manifest
    if args.json:
        say(json.dumps(m, indent=2, sort_keys=True))
        return 0
    schema = m["schema"]
    say(bold(f"{m['name']} {m['version']}") + f"  ({m['task']}, {m.get('estimator', '')})")
    if m.get("classes"):
        say("classes: " + ", ".join(map(str, m["classes"])))
    say("\n" + bold("inputs"))
    rows = []
    for f in schema["features"]:
        st = f.get("stats", {})
        rng = ", ".join(f.get("categories", [])) if f["kind"] == "category" else (
            f"{st['min']:g} … {st['max']:g}" if "min" in st else "")
        rows.append([f["name"], f["kind"], "yes" if f["nullable"] else "no", rng, f"{st.get('missing_rate', 0):.1%}"])
    say(_table(["feature", "kind", "nullable", "range / categories", "missing"], rows))
    if m.get("metrics"):
        say("\n" + bold("metrics (holdout)"))
        gates = m.get("gates", {})

        def gate(k: str) -> str:
            g = gates.get(k) or {}
            return f">= {g['min']}" if "min" in g else (f"<= {g['max']}" if "max" in g else "")

        say(_table(["metric", "value", "gate"], [[k, f"{v:.4f}" if isinstance(v, float) else v, gate(k)]
                                                 for k, v in m["metrics"].items()]))
    say("\n" + bold("parity"))
    say(_table(["target", "rows", "labels agree", "max abs diff", "max rel diff", "bound", "result"],
               [[t, r["rows"], "—" if r["label_agreement"] is None else f"{r['label_agreement']:.2%}",
                 f"{r['max_abs_diff']:.3g}", f"{r['max_rel_diff']:.3g}", f"{r['bound']:.0e}",
                 "pass" if r["passed"] else "FAIL"]
                for t, r in m.get("parity", {}).items()]))
    for t, why in (m.get("unavailable_targets") or {}).items():
        say(f"  {t}: not exported — {why}")
    prov = m.get("provenance", {})
    say("\n" + bold("provenance"))
    data = prov.get("data", {})
    items = [["data sha256", str(data.get("sha256", ""))], ["rows", data.get("rows", "")],
             ["config sha256", prov.get("config_sha256", "")], ["seed", prov.get("seed", "")],
             ["python", prov.get("python", "")], ["platform", prov.get("platform", "")],
             ["git commit", prov.get("git_commit", "")]]
    items += [[k, v] for k, v in sorted((prov.get("libraries") or {}).items())]
    say(_table(["", ""], [i for i in items if i[1] not in ("", None)]))
    say("\nfiles: " + ", ".join(sorted(m["files"])))
    return 0
