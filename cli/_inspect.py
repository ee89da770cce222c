from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show a bundle's schema, metrics, provenance and parity",
                       epilog="example: skedge inspect models/penguins/1.0.0 --json")
    p.add_argument("bundle", help="bundle directory, or a bare model.onnx / model.ort (its schema only)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.add_argument("--registry", metavar="REG", help="BUNDLE is NAME@ALIAS or NAME@VERSION of this registry; "
                                                     "shows the gate report of the promotion too")
    p.set_defaults(func=run)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(head)]
    out = [] if not any(head) else ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
                                    "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


MAX_CATEGORIES_SHOWN = 8  # a 2,000-level id column would otherwise print a 26,000-character line


def _categories(cats: list[str]) -> str:
    shown = [c if len(c) <= 24 else c[:23] + "…" for c in cats[:MAX_CATEGORIES_SHOWN]]
    more = f", … ({len(cats):,} in all; --json lists them)" if len(cats) > MAX_CATEGORIES_SHOWN else ""
    return ", ".join(shown) + more


def _inputs(schema: dict[str, Any]) -> None:
    from ._ui import say

    rows = []
    for f in schema["features"]:
        st = f.get("stats", {})
        rng = _categories(f.get("categories", [])) if f["kind"] == "category" else (
            f"{st['min']:g} … {st['max']:g}" if "min" in st else "")
        rows.append([f["name"], f["kind"], "yes" if f["nullable"] else "no", rng, f"{st.get('missing_rate', 0):.1%}"])
    say(_table(["feature", "kind", "nullable", "range / categories", "missing"], rows))


def _bare(path: Path, as_json: bool) -> int:
    """A bare .onnx/.ort: what its own metadata says (schema, outputs); it has no manifest, metrics or parity."""
    from skedge.runtime import load

    from ._ui import bold, say

    model = load(path)
    schema = model.schema.to_json()
    if as_json:
        say(json.dumps(schema, indent=2, sort_keys=True))
        return 0
    say(bold(path.name) + f"  ({schema['task']}, a bare {model.target} model: no manifest, metrics or parity)")
    if schema.get("classes"):
        say("classes: " + ", ".join(map(str, schema["classes"])))
    _inputs(schema)
    say("\n" + bold("outputs"))
    say(_table(["kind", "output"], [[k, v] for k, v in sorted(schema.get("outputs", {}).items())]))
    return 0


def run(args: argparse.Namespace) -> int:
    from skedge.runtime._bundle import read_bundle

    from ._ui import bold, say

    registry_lines: list[str] = []
    if getattr(args, "registry", None):
        from ._registry import registry_summary

        args.bundle, registry_lines = registry_summary(args.bundle, args.registry)
    path = Path(args.bundle)
    if path.is_file() or path.suffix in (".onnx", ".ort"):
        return _bare(path, args.json)
    bundle = read_bundle(path)
    if "model.onnx" in bundle.files:
        from skedge.runtime import load

        loaded = load(path).bundle  # every hash, and the manifest against the model's own schema
        bundle = loaded if loaded is not None else bundle
    m = bundle.manifest
    if args.json:
        say(json.dumps(m, indent=2, sort_keys=True))
        return 0
    schema = m["schema"]
    say(bold(f"{m['name']} {m['version']}") + f"  ({m['task']}, {m.get('estimator', '')})")
    say(f"bundle id: sha256(manifest.json) {bundle.digest}  (load(..., manifest_sha256=...) checks it)")
    if m.get("classes"):
        say("classes: " + ", ".join(map(str, m["classes"])))
    say("\n" + bold("inputs"))
    _inputs(schema)
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
    if registry_lines:
        say("\n" + bold("registry"))
        say("\n".join(registry_lines))
    return 0
