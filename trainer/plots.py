"""The evaluation's figures: reliability (calibration) and slices. Matplotlib figures; the caller saves them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import LOWER_IS_BETTER, MAIN_METRIC

__all__ = ["reliability_plot", "slices_plot"]


def reliability_plot(y: np.ndarray, proba: np.ndarray, classes: list[str], bins: int = 10) -> Any:
    """Predicted probability against the observed frequency, per class (one-vs-rest; the positive class of a
    binary model), bins of equal width, each point's size its row count: a calibrated model sits on y = x."""
    import matplotlib.pyplot as plt

    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 5.2), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfectly calibrated")
    shown = [1] if len(classes) == 2 else range(len(classes))
    labels = np.asarray([str(v) for v in y])
    edges = np.linspace(0.0, 1.0, bins + 1)
    for k in shown:
        p = proba[:, k]
        hit = (labels == classes[k]).astype(np.float64)
        which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
        count = np.bincount(which, minlength=bins)
        used = count > 0
        mean_p = np.bincount(which, weights=p, minlength=bins)[used] / count[used]
        freq = np.bincount(which, weights=hit, minlength=bins)[used] / count[used]
        brier = float(np.mean((p - hit) ** 2))
        line = ax.plot(mean_p, freq, marker="o", lw=1, label=f"{classes[k]} (Brier one-vs-rest {brier:.3f})")
        ax.scatter(mean_p, freq, s=8 + 60 * count[used] / max(count.max(), 1), color=line[0].get_color())
        hist.hist(p, bins=edges, histtype="step", color=line[0].get_color())
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("reliability (holdout)" + (f": P({classes[1]})" if len(classes) == 2 else ", one-vs-rest"))
    ax.legend(fontsize=7, loc="upper left")
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("rows")
    return fig


def slices_plot(slices: dict[str, Any], task: str) -> Any:
    """One panel per sliced column: the main metric per slice with its 95 % interval, rows beside it; slices
    too small to be gated in grey, the worst gated slice in red."""
    import matplotlib.pyplot as plt

    main = MAIN_METRIC[task]
    n = len(slices)
    height = max(2.2, 0.45 * max(len(v["slices"]) for v in slices.values()) + 1.2)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, height), squeeze=False)
    for ax, (column, info) in zip(axes[0], slices.items(), strict=True):
        rows = info["slices"]
        ys = np.arange(len(rows))[::-1]
        for yy, s in zip(ys, rows, strict=True):
            v = s["metrics"].get(main)
            if v is None:
                continue
            iv = s["intervals"].get(main)
            color = "red" if s["slice"] == info["worst"] and s["gated"] else ("C0" if s["gated"] else "grey")
            err = None if iv is None else [[max(v - iv[0], 0.0)], [max(iv[1] - v, 0.0)]]
            ax.errorbar(v, yy, xerr=err, fmt="o", color=color, capsize=3)
            ax.annotate(f"n={s['rows']}", (v, yy), textcoords="offset points", xytext=(0, 7), fontsize=7,
                        ha="center", color=color)
        ax.set_yticks(ys, [s["slice"] for s in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        better = "lower" if main in LOWER_IS_BETTER else "higher"
        ax.set_xlabel(f"{main} (95 % interval; {better} is better)")
        ax.set_title(f"by {column}: worst {info['worst']} (grey: too few rows to gate)", fontsize=9)
    return fig
