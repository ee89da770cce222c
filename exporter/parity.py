"""Parity across targets: run the golden rows through each exported model, compare, report."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from skedge.runtime._parity import ParityRow, compare_outputs

__all__ = ["check_target", "left_out_warning", "parity_table", "parity_markdown", "parity_plot", "parity_figure"]

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


def _output(outputs: dict[str, Any]) -> tuple[str, np.ndarray] | None:
    for kind in ("probabilities", "value", "score"):
        if kind in outputs:
            v = np.asarray(outputs[kind], dtype=np.float64)
            return kind, v.reshape(len(v), -1)
    return None


def _linthresh(diffs: list[np.ndarray], abs_tol: float) -> float:
    # the linear band of the symlog axis: a decade under the smallest difference there is, so a 1e-8 gap shows
    # as a point eight decades up rather than on y = x; never above a tenth of the bound
    nonzero = np.concatenate([np.abs(d[np.isfinite(d) & (d != 0)]) for d in diffs] or [np.zeros(0)])
    floor = 10.0 ** np.floor(np.log10(nonzero.min())) / 10 if nonzero.size else 1e-12
    return float(max(min(floor, abs_tol / 10), 1e-18))


def parity_plot(golden: dict[str, Any], got_by_target: dict[str, dict[str, Any]], *,
                classes: Any = None) -> bytes:
    """PNG: exported minus sklearn per golden row, one panel per target, one colour per class (probabilities)
    or the value, on a symmetric log scale; the parity bound dashed, threshold-sweep rows as crosses, label
    mismatches as red lines."""
    return _save(parity_figure(golden, got_by_target, classes=classes))


def parity_figure(golden: dict[str, Any], got_by_target: dict[str, dict[str, Any]], *, classes: Any = None) -> Any:
    """The matplotlib figure of ``parity_plot`` (a test reads its points and lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = golden["expected"]
    found = _output(ref)
    tol = golden.get("tolerance") or {}
    abs_tol, rel_tol = float(tol.get("abs", 1e-5)), float(tol.get("rel", 1e-5))
    kinds = [str(k) for k in golden.get("kinds", [])]
    targets = list(got_by_target.items())  # in the order the targets were checked: onnx first
    fig, axes = plt.subplots(max(1, len(targets)), 1, figsize=(9, 3.1 * max(1, len(targets))), squeeze=False)
    if found is None or not targets:
        axes[0][0].set_title("no values to compare")
        return fig
    kind, r = found
    n = len(r)
    threshold = np.array([k.startswith("threshold") for k in kinds] + [False] * max(0, n - len(kinds)))[:n]
    names = [str(c) for c in classes] if classes is not None and kind == "probabilities" else []
    series = [f"P({names[j]})" if j < len(names) else (f"class {j}" if kind == "probabilities" else kind)
              for j in range(r.shape[1])]
    diffs = []
    for _, got in targets:
        g = _output(got)
        diffs.append(g[1] - r if g is not None and g[1].shape == r.shape else np.full_like(r, np.nan))
    lin = _linthresh(diffs, abs_tol)
    x = np.arange(n)
    bound = np.maximum(abs_tol, rel_tol * np.maximum(1.0, np.abs(r)))
    for ax, (target, got), d in zip(axes[:, 0], targets, diffs, strict=True):
        for j in range(r.shape[1]):
            color = f"C{j % 10}"
            ax.scatter(x[~threshold], d[~threshold, j], s=7, color=color, marker="o", label=series[j])
            ax.scatter(x[threshold], d[threshold, j], s=9, color=color, marker="x", linewidths=0.6)
        worst = np.max(bound, axis=1)
        ax.plot(x, worst, color="black", ls="--", lw=0.8, label=f"bound ({abs_tol:g} abs, {rel_tol:g} rel)")
        ax.plot(x, -worst, color="black", ls="--", lw=0.8)
        if "label" in ref and "label" in got:
            bad = [i for i, (a, b) in enumerate(zip(got["label"], ref["label"], strict=False)) if str(a) != str(b)]
            for i in bad:
                ax.axvline(i, color="red", lw=0.8)
            if bad:
                ax.plot([], [], color="red", lw=0.8, label=f"{len(bad)} label mismatches")
        if threshold.any():
            ax.scatter([], [], marker="x", color="grey", label=f"threshold rows ({int(threshold.sum())})")
        ax.set_yscale("symlog", linthresh=lin)
        top = int(np.ceil(np.log10(max(float(worst.max()), lin * 10))))
        step = max(1, (top - int(np.log10(lin))) // 4)  # about four decades labelled on each side of zero
        ticks = [10.0 ** e for e in range(top, int(np.log10(lin)) - 1, -step)]
        ax.set_yticks([*ticks, 0.0, *(-t for t in reversed(ticks))])
        finite = d[np.isfinite(d)]
        peak = float(np.max(np.abs(finite))) if finite.size else 0.0
        ax.set_title(f"{target} − sklearn per golden row ({kind}): max |difference| {peak:.3g}", fontsize=9)
        ax.set_ylabel(f"exported − reference\n(symlog, linear under {lin:.0e})", fontsize=8)
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    axes[-1][0].set_xlabel("golden row")
    return fig


def _save(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
