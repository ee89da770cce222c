"""Comparing a model's answers with reference answers: the one parity rule.

Labels must agree on every row. Probabilities, values and scores must agree
within ``abs`` for values up to 1 in magnitude and within ``rel`` relative to
the reference above that (a float32 tree output of 4,000 g cannot be closer
than 2.4e-4 in absolute terms). The exporter and the runtime both call this,
so what ``skedge verify`` checks is what export checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_TOLERANCE", "ParityRow", "compare_outputs"]

DEFAULT_TOLERANCE = {"abs": 1e-5, "rel": 1e-5}


@dataclass(frozen=True)
class ParityRow:
    target: str
    rows: int
    label_agreement: float | None
    label_mismatches: int
    max_abs_diff: float
    max_rel_diff: float
    bound: float
    passed: bool
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _values_diff(got: np.ndarray, ref: np.ndarray, abs_tol: float, rel_tol: float) -> tuple[float, float, bool]:
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf"), float("inf"), False
    both_nan = np.isnan(got) & np.isnan(ref)
    diff = np.where(both_nan, 0.0, np.abs(got - ref))
    diff = np.where(np.isnan(diff), np.inf, diff)
    scale = np.maximum(1.0, np.abs(ref))
    rel = diff / scale
    ok = bool(np.all(diff <= np.maximum(abs_tol, rel_tol * scale)))
    return float(diff.max(initial=0.0)), float(rel.max(initial=0.0)), ok


def compare_outputs(target: str, got: dict[str, Any], ref: dict[str, Any], tolerance: dict[str, Any] | None = None
                    ) -> ParityRow:
    """Compare ``got`` with ``ref``; both map output kind ("label", "probabilities", "value", "score") to arrays."""
    tol = dict(DEFAULT_TOLERANCE)
    tol.update(tolerance or {})
    abs_tol, rel_tol = float(tol["abs"]), float(tol["rel"])
    n = 0
    agreement: float | None = None
    mismatches = 0
    passed = True
    if "label" in ref:
        r = [str(x) for x in ref["label"]]
        g = [str(x) for x in got["label"]]
        n = len(r)
        if len(g) != n:
            mismatches = n
        else:
            mismatches = sum(1 for a, b in zip(g, r, strict=True) if a != b)
        agreement = 1.0 - mismatches / n if n else 1.0
        passed = mismatches == 0
    max_abs = 0.0
    max_rel = 0.0
    for kind in ("probabilities", "value", "score"):
        if kind in ref:
            a, r_, ok = _values_diff(got[kind], ref[kind], abs_tol, rel_tol)
            n = n or len(ref[kind])
            max_abs, max_rel = max(max_abs, a), max(max_rel, r_)
            passed = passed and ok
    return ParityRow(
        target=target,
        rows=n,
        label_agreement=agreement,
        label_mismatches=mismatches,
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        bound=max(abs_tol, rel_tol),
        passed=passed,
        note=str(tol.get("reason") or ""),
    )
