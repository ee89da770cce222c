"""Shadow scoring: a candidate alias answers a share of calls beside the served model, never to the caller.

The candidate runs on one background thread (the caller waits for the served model only) with at most
``_PENDING`` calls queued; beyond that a shadow call is dropped and counted, so a slow candidate never
slows the app. Kept per call: both answers and both latencies, in bounded windows (no rows).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ShadowStats", "psi"]

_WINDOW = 10_000  # answers kept per model for agreement and PSI
_PENDING = 64
_EPS = 1e-4


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """Σ (cur − ref) · ln(cur / ref) over proportions, with a small epsilon for empty bins (DESIGN.md)."""
    p = np.maximum(ref / max(ref.sum(), 1), _EPS)
    q = np.maximum(cur / max(cur.sum(), 1), _EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def _flat(answer: Any) -> np.ndarray:
    a = np.asarray(answer)
    return a.reshape(-1) if a.ndim else a.reshape(1)


class ShadowStats:
    """Agreement, PSI between the two models' answers, latencies; thread-safe."""

    def __init__(self, task: str, *, rel_tol: float = 1e-3) -> None:
        self.task = task
        self.rel_tol = rel_tol  # regression: two values "agree" within this relative difference
        self._lock = threading.Lock()
        self._served: deque[Any] = deque(maxlen=_WINDOW)
        self._shadow: deque[Any] = deque(maxlen=_WINDOW)
        self._lat_served: deque[float] = deque(maxlen=_WINDOW)
        self._lat_shadow: deque[float] = deque(maxlen=_WINDOW)
        self.calls = self.errors = self.dropped = 0
        self.version: str | None = None
        self._pending = 0
        self._pool: Any = None

    def submit(self, run: Callable[[], tuple[Any, float, str | None]], served: Any, served_s: float) -> None:
        """Score one call with the candidate in the background (``run`` returns answer, seconds, version)."""
        with self._lock:
            if self._pending >= _PENDING:
                self.dropped += 1
                return
            self._pending += 1
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skedge-shadow")
        self._pool.submit(self._score, run, served, served_s)

    def _score(self, run: Callable[[], tuple[Any, float, str | None]], served: Any, served_s: float) -> None:
        try:
            answer, seconds, version = run()
        except Exception:  # the candidate's failure is a figure of the report, never the caller's problem
            with self._lock:
                self.errors += 1
                self._pending -= 1
            return
        a, b = _flat(served), _flat(answer)
        with self._lock:
            self._pending -= 1
            if a.shape != b.shape:
                self.errors += 1
                return
            self.calls += 1
            self.version = version
            self._served.extend(a.tolist())
            self._shadow.extend(b.tolist())
            self._lat_served.append(served_s)
            self._lat_shadow.append(seconds)

    def wait(self, timeout: float = 5.0) -> None:
        """Until the queued shadow calls are scored (for tests and reports at a known point)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if self._pending == 0:
                    return
            time.sleep(0.001)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def report(self) -> dict[str, Any]:
        with self._lock:
            a, b = list(self._served), list(self._shadow)
            ls, lc = list(self._lat_served), list(self._lat_shadow)
            calls, errors, dropped, version = self.calls, self.errors, self.dropped, self.version
        out: dict[str, Any] = {"version": version, "calls": calls, "rows": len(a), "errors": errors,
                               "dropped": dropped, "agreement": None, "psi": None,
                               "latency_us": {"served_median": None, "shadow_median": None,
                                              "served_p95": None, "shadow_p95": None}}
        if not a:
            return out
        if self.task == "regression":
            x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
            agree = np.abs(x - y) <= self.rel_tol * np.maximum(np.abs(x), 1e-12)
            edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)[1:-1]))
            ref, cur = (np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
                        for v in (x, y))
        else:  # labels: the two models' class frequencies
            agree = np.asarray([str(p) == str(q) for p, q in zip(a, b, strict=True)])
            cats = sorted({str(v) for v in a} | {str(v) for v in b})
            index = {c: i for i, c in enumerate(cats)}
            ref = np.bincount([index[str(v)] for v in a], minlength=len(cats))
            cur = np.bincount([index[str(v)] for v in b], minlength=len(cats))
        out["agreement"] = float(np.mean(agree))
        out["psi"] = psi(ref.astype(np.float64), cur.astype(np.float64))
        us = 1e6
        out["latency_us"] = {"served_median": float(np.median(ls)) * us, "shadow_median": float(np.median(lc)) * us,
                             "served_p95": float(np.quantile(ls, 0.95)) * us,
                             "shadow_p95": float(np.quantile(lc, 0.95)) * us}
        return out
