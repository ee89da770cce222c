"""The live model's costs, side by side in one process (issue 15).

For the bundled example (penguins, a 100-tree forest), published to a registry and exported with
``skedge registry export-static``, served by a threading HTTP server on 127.0.0.1 with ETags:

* one update check against an unchanged channel: time per check and bytes both ways, over http (one
  conditional request, answered 304), on the export as a directory, and on the registry directory;
* a swap: a new version promoted and exported, then one check that downloads it into staging, verifies
  the signature and every hash, loads a session, runs the golden rows here and swaps (time and bytes);
* one-row ``predict`` through the live model vs the plain ``Model`` it delegates to (the delegation's cost).

Writes its section of docs/bench.md (between the bench_follow markers).

    python bench/bench_follow.py            # ~1 minute
    python bench/bench_follow.py --quick    # fewer repeats, nothing written
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from docsection import write_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bench.md"
START, END = "<!-- bench_follow:start -->", "<!-- bench_follow:end -->"


def _as_version(src: Path, dst: Path, version: str, key: Path) -> Path:
    from skedge.runtime.signing import sign_bundle

    shutil.copytree(src, dst)
    (dst / "signature.json").unlink(missing_ok=True)
    m = json.loads((dst / "manifest.json").read_text())
    m["version"] = version
    for name in m["files"]:
        data = (dst / name).read_bytes()
        m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (dst / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True))
    sign_bundle(dst, key)
    return dst


def _per_call(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _us(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1e6:,.0f} µs (p95 {sorted(xs)[int(len(xs) * 0.95)] * 1e6:,.0f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    checks, swaps, calls = (50, 2, 2000) if args.quick else (500, 5, 20000)

    from skedge.registry import init_registry, promote, publish
    from skedge.registry.static import StaticServer, export_static
    from skedge.runtime import follow, load
    from skedge.runtime.signing import generate_keypair
    from skedge.trainer import train

    with tempfile.TemporaryDirectory(prefix="skedge-bench-follow-") as tmp:
        work = Path(tmp)
        print("training the penguins example ...", flush=True)
        bundle = train(ROOT / "examples" / "penguins.toml", work / "models").path
        key, pub = generate_keypair(work / "keys")
        reg = init_registry(work / "reg", require_signatures=pub)
        versions = [f"{i}.0.0" for i in range(1, swaps + 2)]
        for v in versions:
            publish(_as_version(bundle, work / "b" / v, v, key), reg)
        promote(reg, "penguins", versions[0], "prod", key=key)
        site = work / "site"
        export_static(reg, "penguins", site, key=key)
        size = sum(f.stat().st_size for f in (reg / "bundles").rglob("*") if f.is_file()) // len(versions)
        rows: dict[str, Any] = {}
        with StaticServer(site) as server:
            live = follow(server.url, name="penguins", alias="prod", trust=pub, every=3600, state_dir=work / "s")
            live.check()
            n0, b0 = len(server.requests), server.bytes_in + server.bytes_out
            t = _per_call(live.check, checks)
            reqs = server.requests[n0:]
            assert all(s == 304 for _, s in reqs) and len(reqs) == checks, reqs[:3]
            rows["http, unchanged (304)"] = (t, (server.bytes_in + server.bytes_out - b0) / checks, 1)
            swap_t, swap_b = [], []
            for v in versions[1:]:
                promote(reg, "penguins", v, "prod", key=key, force=True, reason="bench")
                export_static(reg, "penguins", site, key=key)
                b0, n0 = server.bytes_in + server.bytes_out, len(server.requests)
                t0 = time.perf_counter()
                assert live.check() and live.version == v
                swap_t.append(time.perf_counter() - t0)
                swap_b.append((server.bytes_in + server.bytes_out - b0, len(server.requests) - n0))
            row = json.loads((bundle / "golden.json").read_text())["rows"][0]
            plain = load(bundle)
            live.predict(row)
            direct = _per_call(lambda: plain.predict(row), calls)
            via = _per_call(lambda: live.predict(row), calls)
            assert live.predict(row) == plain.predict(row)
            live.close()
        with follow(site, name="penguins", alias="prod", trust=pub, every=3600, state_dir=work / "s2") as d:
            rows["directory export, unchanged"] = (_per_call(d.check, checks), 0, 0)
        with follow(reg, name="penguins", alias="prod", trust=pub, every=3600, state_dir=work / "s3") as r:
            rows["registry directory, unchanged"] = (_per_call(r.check, checks), 0, 0)

    lines = ["| one update check | time per check | bytes per check (both ways) | requests |", "|---|---|---|---|"]
    for name, (t, b, n) in rows.items():
        lines.append(f"| {name} | {_us(t)} | {b:,.0f} | {n} |")
    swap_line = (f"| a new version: download, verify (signature, every sha256), load, golden rows, swap | "
                 f"{statistics.median(swap_t) * 1e3:,.0f} ms (of {len(swap_t)}; max {max(swap_t) * 1e3:,.0f}) | "
                 f"{statistics.median(b for b, _ in swap_b):,.0f} | {swap_b[0][1]} |")
    lines.append(swap_line)
    overhead = statistics.median(via) - statistics.median(direct)
    load_avg = "/".join(f"{x:.1f}" for x in os.getloadavg())
    text = (f"## Live updates (bench/bench_follow.py)\n\n{date.today().isoformat()}, {platform.machine()}, "
            f"{os.cpu_count()} cores (load average {load_avg}), Python {platform.python_version()}. The penguins "
            f"bundle ({size / 1e6:.2f} MB with model.ort, model.mlmodel and golden.json), signed, "
            f"served by skedge.registry.static.StaticServer (ThreadingHTTPServer, ETags) on 127.0.0.1; "
            f"`live.check()` is the poll the timer runs every `every` seconds.\n\n" + "\n".join(lines) +
            f"\n\nOne-row `predict` through the live model: {_us(via)} vs {_us(direct)} on the plain `Model` "
            f"(delegation and failure counting: {overhead * 1e6:+.1f} µs per call).\n")
    print(text)
    if not (args.quick or args.no_write):
        write_section(DOC, START, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
