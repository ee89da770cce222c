"""``verify_bundle``: every exported target of a bundle against the golden vectors, with a report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from skedge.runtime import load
from skedge.runtime._bundle import read_bundle
from skedge.runtime._parity import ParityRow

from .parity import check_target, parity_markdown, parity_plot

__all__ = ["verify_bundle", "EXTRA_TARGETS"]

# target name -> (bundle path, golden) -> predict_outputs callable; filled by optional targets (web)
EXTRA_TARGETS: dict[str, Callable[[Path, dict[str, Any]], Callable[[list[dict[str, Any]]], dict[str, Any]]]] = {}


def verify_bundle(path: str | Path, *, extra: tuple[str, ...] = (), report_dir: Path | None = None
                  ) -> list[ParityRow]:
    """Run the golden rows through onnx, ort and coreml (whichever the bundle has) and any ``extra`` targets.

    Writes ``parity.md`` and ``parity.png`` to ``report_dir`` (default ``<bundle>/report/verify``; files
    outside the manifest, so the bundle's hashes still hold).
    """
    p = Path(path)
    bundle = read_bundle(p)
    golden = bundle.golden()
    rows: list[ParityRow] = []
    got_by: dict[str, dict[str, Any]] = {}
    for target, fname in (("onnx", "model.onnx"), ("ort", "model.ort")):
        if bundle.has(fname):
            row, got = check_target(target, load(p, target=target).predict_outputs, golden)
            rows.append(row)
            got_by[target] = got
    if bundle.has("model.mlmodel"):
        from . import load_coreml

        row, got = check_target("coreml", load_coreml(p / "model.mlmodel").predict_outputs, golden)
        rows.append(row)
        got_by["coreml"] = got
    for target in extra:
        if target not in EXTRA_TARGETS:
            raise ValueError(f"unknown verify target {target!r}")
        row, got = check_target(target, EXTRA_TARGETS[target](p, golden), golden)
        rows.append(row)
        got_by[target] = got
    out = report_dir or (p / "report" / "verify")
    out.mkdir(parents=True, exist_ok=True)
    (out / "parity.md").write_text("# Parity\n\n" + parity_markdown(rows, golden), encoding="utf-8")
    (out / "parity.png").write_bytes(parity_plot(golden, got_by))
    return rows
