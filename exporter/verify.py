"""``verify_bundle``: every exported target of a bundle against the golden vectors, with a report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from skedge.runtime import load
from skedge.runtime._bundle import read_bundle
from skedge.runtime._errors import BundleError
from skedge.runtime._parity import ParityRow

from .bundle import atomic_write
from .parity import check_target, parity_markdown, parity_plot

__all__ = ["verify_bundle", "EXTRA_TARGETS"]

# target name -> (bundle path, golden) -> predict_outputs callable; filled by optional targets (web)
EXTRA_TARGETS: dict[str, Callable[[Path, dict[str, Any]], Callable[[list[dict[str, Any]]], dict[str, Any]]]] = {}


def verify_bundle(path: str | Path, *, extra: tuple[str, ...] = (), report_dir: Path | None = None
                  ) -> list[ParityRow]:
    """Run the golden rows through onnx, ort and coreml (whichever the bundle has) and any ``extra`` targets.

    Never writes into the bundle (a signed or read-only bundle stays as it is): ``parity.md`` and
    ``parity.png`` go to ``report_dir`` when one is given (it must not be inside the bundle), else nowhere.
    """
    p = Path(path)
    if report_dir is not None and _inside(Path(report_dir), p):
        raise BundleError(f"the report directory {report_dir} is inside the bundle {p}: verify never writes into "
                         "a bundle (its files are a closed set); choose a directory outside it")
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
    if report_dir is not None:
        out = Path(report_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "parity.md", ("# Parity\n\n" + parity_markdown(rows, golden)).encode("utf-8"))
        atomic_write(out / "parity.png", parity_plot(golden, got_by, classes=bundle.manifest.get("classes")))
    return rows


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True
