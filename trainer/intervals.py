"""Bootstrap intervals: seeded percentile intervals of every holdout metric, and of paired differences.

The resamples are drawn as a weight matrix (how often each holdout row is in each resample) from
``numpy.random.default_rng(seed)``, in blocks whose size depends only on the row count, so the same seed and
holdout give the same intervals to the byte on every run. Model and baselines are scored on the same
resamples: a gain's interval is the interval of the paired difference, not of two unrelated draws.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .metrics import Answers, compute

__all__ = ["Bootstrap", "weights", "point", "resampled", "interval"]

# resamples per block times rows: bounds the weight matrix to ~32 MB whatever the holdout size
_BLOCK_CELLS = 1_000_000


@dataclass(frozen=True)
class Bootstrap:
    resamples: int = 1000
    level: float = 0.95
    seed: int = 0

    def to_json(self) -> dict[str, object]:
        return {"method": "percentile bootstrap of the holdout rows", "resamples": self.resamples,
                "level": self.level, "seed": self.seed}


def weights(n: int, boot: Bootstrap) -> Iterator[np.ndarray]:
    """Blocks of the (resamples, n) weight matrix, each row a resample of n rows with replacement."""
    rng = np.random.default_rng(boot.seed)
    block = max(1, min(boot.resamples, _BLOCK_CELLS // max(n, 1)))
    done = 0
    while done < boot.resamples:
        b = min(block, boot.resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        flat = (idx + (np.arange(b) * n)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def point(a: Answers, names: tuple[str, ...] | None = None) -> dict[str, float]:
    return {k: float(v[0]) for k, v in compute(a, np.ones((1, len(a))), names).items()}


def resampled(answers: dict[str, Answers], boot: Bootstrap, names: tuple[str, ...] | None = None
              ) -> dict[str, dict[str, np.ndarray]]:
    """Every metric of every model in ``answers`` (same holdout rows) on the same resamples: (resamples,) each."""
    n = len(next(iter(answers.values())))
    parts: dict[str, dict[str, list[np.ndarray]]] = {who: {} for who in answers}
    for W in weights(n, boot):
        for who, a in answers.items():
            for k, v in compute(a, W, names).items():
                parts[who].setdefault(k, []).append(v)
    return {who: {k: np.concatenate(v) for k, v in m.items()} for who, m in parts.items()}


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """The percentile interval, over the resamples where the metric is defined (None if under half are)."""
    ok = values[~np.isnan(values)]
    if ok.size < max(1, values.size // 2):
        return None
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(ok, [tail, 100 - tail])
    return float(lo), float(hi)
