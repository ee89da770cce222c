"""Parity across targets: run the golden rows through each exported model, compare, report."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from skedge.runtime._parity import ParityRow, compare_outputs

__all__ = ["check_target", "left_out_warning", "parity_table", "parity_markdown", "parity_plot"]

Predictor = Callable[[list[dict[str, Any]]], dict[str, Any]]


def check_target(target: str, predict_outputs: Predictor, golden: Any, tolerance: dict[str, Any] | None = None
                 ) -> tuple[ParityRow, dict[str, Any]]:
    """Run ``golden`` (golden.json's dict, or the export's whole ``Sweep``) through a target and compare.

    The sweep goes in as one dict of columns: one batched call per target, not one per row.
    """
    if isinstance(golden, dict):
        got = predict_outputs(golden["rows"])
        return compare_outputs(target, got, golden["expected"], tolerance or golden.get("tolerance")), got
    got = predict_outputs(golden.columns)
    return compare_outputs(target, got, golden.expected, tolerance), got


def left_out_warning(manifest: dict[str, Any]) -> str | None:
    """One line for a CLI: the targets the export left out of the bundle and why (None if none)."""
    gone = manifest.get("unavailable_targets") or {}
    if not gone:
        return None
    parts = [f"{t} ({' '.join(str(why).split())[:160]})" for t, why in sorted(gone.items())]
    return "warning: left out of the bundle: " + "; ".join(parts) + "; see card.md"


def _fmt_agreement(row: ParityRow) -> str:
    return "—" if row.label_agreement is None else f"{row.label_agreement * 100:.2f} %"


def parity_table(rows: list[ParityRow]) -> str:
    """A plain-text table for a terminal."""
    head = ["target", "rows", "labels agree", "max abs diff", "max rel diff", "bound", "result"]
    body = [[r.target, str(r.rows), _fmt_agreement(r), f"{r.max_abs_diff:.3g}", f"{r.max_rel_diff:.3g}",
             f"{r.bound:.0e}", "pass" if r.passed else "FAIL"] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def parity_markdown(rows: list[ParityRow], golden: dict[str, Any] | None = None, *,
                    sweep: dict[str, Any] | None = None, dropped: dict[str, ParityRow] | None = None) -> str:
    lines = ["| target | rows | labels agree | max abs diff | max rel diff | bound | result |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.target} | {r.rows} | {_fmt_agreement(r)} | {r.max_abs_diff:.3g} | "
                     f"{r.max_rel_diff:.3g} | {r.bound:.0e} | {'pass' if r.passed else '**FAIL**'} |")
    for t, r in sorted((dropped or {}).items()):
        lines.append(f"| {t} | {r.rows} | {_fmt_agreement(r)} | {r.max_abs_diff:.3g} | "
                     f"{r.max_rel_diff:.3g} | {r.bound:.0e} | **FAIL**: left out of the bundle |")
    if sweep is not None:
        lines.append("")
        lines.append(f"Rows: the export sweep, {sweep['rows']:,} rows answered by sklearn and every target: "
                     f"{sweep['tree_splits']:,} tree splits, {sweep['boundaries_probed']:,} distinct boundaries "
                     "in input space probed on both sides in float64 and float32"
                     + (" (a sample of them: too many to probe all)" if sweep.get("splits_sampled") else "")
                     + (" (packed: each row probes one boundary of every number feature)" if sweep.get("packed")
                        else "")
                     + f", plus the golden rows. golden.json keeps {sweep['golden_rows']:,} of them.")
        lines.append("Golden rows: " + ("real holdout rows (export.golden = \"holdout\")." if sweep.get("golden") ==
                                        "holdout" else "no sample record whole: each field of a mixed row comes "
                                        "from a different holdout row; edge, threshold and tie rows."))
    if golden is not None:
        kinds: dict[str, int] = {}
        for k in golden.get("kinds", []):
            key = k.split(":")[0]
            kinds[key] = kinds.get(key, 0) + 1
        lines.append("")
        lines.append("Golden rows by origin: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ".")
        reason = (golden.get("tolerance") or {}).get("reason")
        if reason:
            lines.append(f"Bound: {reason}")
    return "\n".join(lines) + "\n"


def _values(outputs: dict[str, Any]) -> np.ndarray:
    for kind in ("probabilities", "value", "score"):
        if kind in outputs:
            return np.asarray(outputs[kind], dtype=np.float64).ravel()
    return np.zeros(0)


def parity_plot(golden: dict[str, Any], got_by_target: dict[str, dict[str, Any]]) -> bytes:
    """PNG: reference vs exported values per target; label mismatches marked in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = golden["expected"]
    ref_v = _values(ref)
    n = max(1, len(got_by_target))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4), squeeze=False)
    for ax, (target, got) in zip(axes[0], sorted(got_by_target.items()), strict=False):
        got_v = _values(got)
        if len(got_v) == len(ref_v) and len(ref_v):
            ax.scatter(ref_v, got_v, s=6, alpha=0.6, label="rows")
            lo, hi = float(np.nanmin(ref_v)), float(np.nanmax(ref_v))
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        if "label" in ref and "label" in got:
            bad = [i for i, (a, b) in enumerate(zip(got["label"], ref["label"], strict=False)) if str(a) != str(b)]
            if bad and len(got_v) == len(ref_v):
                width = len(ref_v) // max(len(ref["label"]), 1)
                idx = [i * width + j for i in bad for j in range(width)]
                ax.scatter(ref_v[idx], got_v[idx], s=18, color="red", label=f"{len(bad)} label mismatches")
        ax.set_title(target)
        ax.set_xlabel("sklearn reference")
        ax.set_ylabel("exported")
        ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
