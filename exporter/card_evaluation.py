"""The card's evaluation sections: metrics with intervals beside both baselines, the gates, and the slices.

Written from the manifest alone (``metrics``, ``gates`` and the trainer's ``evaluation`` block), so a card can
be rendered again from a bundle; a pipeline exported by a user without the trainer has metrics only, shown
as a plain table.
"""

from __future__ import annotations

from typing import Any

__all__ = ["metrics_markdown", "slices_markdown"]

# metrics the slice tables show (the manifest holds them all): the main one first
_SLICE_COLUMNS = {"classification": ("accuracy", "balanced_accuracy", "log_loss"),
                  "regression": ("mae", "rmse", "mape"),
                  "anomaly": ("contamination_observed", "contamination_gap")}


def _num(v: Any) -> str:
    return "—" if v is None else f"{v:.4f}"


def _iv(iv: Any) -> str:
    return "—" if not iv else f"[{iv[0]:.4f}, {iv[1]:.4f}]"


def _gates_line(gates: dict[str, Any], gate_on: str, title: str) -> list[str]:
    if not gates:
        return []
    shown = [f"{k} ≥ {g['min']}" if "min" in g else f"{k} ≤ {g['max']}" for k, g in gates.items()]
    on = ("the worse end of the 95 % interval (lower for scores and gains, upper for errors)"
          if gate_on == "interval" else "the holdout value")
    return [f"{title} (all met, on {on}): " + ", ".join(shown), ""]


def metrics_markdown(manifest: dict[str, Any]) -> list[str]:
    metrics = {k: v for k, v in (manifest.get("metrics") or {}).items() if isinstance(v, int | float)}
    ev = manifest.get("evaluation") or {}
    gates = manifest.get("gates") or {}
    out: list[str] = []
    if not metrics:
        return _gates_line(gates, str(ev.get("gate_on", "value")), "Quality gates")
    if not ev:
        out += ["## Metrics (holdout)", "", "| metric | value |", "|---|---|"]
        out += [f"| {k} | {v:.4f} |" for k, v in metrics.items()]
        return out + [""] + _gates_line(gates, "value", "Quality gates")
    boot = ev.get("bootstrap") or {}
    rows = ((manifest.get("provenance") or {}).get("data") or {}).get("holdout_rows")
    out += ["## Metrics (holdout)", "",
            (f"{rows} holdout rows. " if rows else "")
            + f"95 % intervals: percentile bootstrap of the holdout rows, {boot.get('resamples')} resamples, "
              f"seed {boot.get('seed')} (the same bundle every run).", ""]
    bases = ev.get("baselines") or {}
    gains = ev.get("gains") or {}
    intervals = ev.get("intervals") or {}
    lower = set(ev.get("lower_is_better") or ())  # the trainer says which way each metric points
    if bases:
        out += ["| metric | model | 95 % interval | dummy | linear | gain over the better baseline | better |",
                "|---|---|---|---|---|---|---|"]
        for k, v in metrics.items():
            gain = gains.get(f"{k}_gain_over_baseline")
            g = "—" if gain is None else f"{gain['value']:+.4f} {_iv(gain['interval'])} (over {gain['baseline']})"
            out.append(f"| {k} | {v:.4f} | {_iv(intervals.get(k))} | "
                       f"{_num((bases.get('dummy') or {}).get('metrics', {}).get(k))} | "
                       f"{_num((bases.get('linear') or {}).get('metrics', {}).get(k))} | {g} | "
                       f"{'lower' if k in lower else 'higher'} |")
        out += ["", "Baselines, fitted on the same training rows and scored on the same holdout and resamples "
                "(a gain is the paired difference, positive when the model is better):"]
        out += [f"- {who}: {info.get('model', '')}" for who, info in bases.items()]
        out.append(f"- `<metric>_gain_over_baseline` compares with {ev.get('baseline_rule', 'the better baseline')}.")
        out.append("")
    else:
        out += ["| metric | model | 95 % interval | better |", "|---|---|---|---|"]
        out += [f"| {k} | {v:.4f} | {_iv(intervals.get(k))} | {'lower' if k in lower else 'higher'} |"
                for k, v in metrics.items()]
        out.append("")
    return out + _gates_line(gates, str(ev.get("gate_on", "value")), "Quality gates")


def slices_markdown(manifest: dict[str, Any]) -> list[str]:
    ev = manifest.get("evaluation") or {}
    sl = ev.get("slices") or {}
    columns = sl.get("columns") or {}
    if not columns:
        return []
    task = str(manifest.get("task", "classification"))
    shown = _SLICE_COLUMNS.get(task, ())
    out = ["## Slices", "",
           f"The holdout by {', '.join(f'`{c}`' for c in columns)}: categories by value, numbers by quantile bins "
           f"of the training rows. Slices of fewer than {sl.get('min_rows')} rows are reported, not gated. "
           "Every metric of every slice, with its interval, is in manifest.json (`evaluation.slices`).", ""]
    out += _gates_line(sl.get("gates") or {}, str(ev.get("gate_on", "value")), "Slice gates")
    for column, info in columns.items():
        out += [f"### {column}: worst slice {info.get('worst')} (by {info.get('ranked_by')}, among the "
                f"{info.get('worst_among', 'slices')})", "",
                "| slice | rows | " + " | ".join(shown) + " | gated |",
                "|---|---|" + "---|" * len(shown) + "---|"]
        for s in info.get("slices", []):
            cells = [f"{_num(s['metrics'].get(m))} {_iv(s['intervals'].get(m))}" for m in shown]
            out.append(f"| {s['slice']} | {s['rows']} | " + " | ".join(cells) +
                       f" | {'yes' if s['gated'] else 'no (too few rows)'} |")
        out.append("")
    return out
