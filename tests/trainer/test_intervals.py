"""Bootstrap intervals: they hold the point estimate, narrow as the holdout grows, and repeat to the byte."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skedge.trainer.intervals import Bootstrap, interval, point, resampled, weights
from skedge.trainer.metrics import METRICS, Answers


def _answers(n: int, seed: int = 0) -> Answers:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.2 * (y[:, None] == np.arange(3))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Answers("classification", y, p.argmax(axis=1), p, ("a", "b", "c"))


def _intervals(a: Answers, boot: Bootstrap) -> dict[str, tuple[float, float] | None]:
    return {k: interval(v, boot.level) for k, v in resampled({"m": a}, boot)["m"].items()}


def test_intervals_hold_the_point_estimate_and_shrink_with_more_rows() -> None:
    boot = Bootstrap(resamples=500, seed=3)
    small, large = _answers(100, seed=1), _answers(900, seed=1)
    iv_small, iv_large = _intervals(small, boot), _intervals(large, boot)
    for a, ivs in ((small, iv_small), (large, iv_large)):
        for k, v in point(a).items():
            lo, hi = ivs[k]  # type: ignore[misc]
            assert lo <= v <= hi, (k, lo, v, hi)
    for k in METRICS["classification"]:
        w_small = iv_small[k][1] - iv_small[k][0]  # type: ignore[index]
        w_large = iv_large[k][1] - iv_large[k][0]  # type: ignore[index]
        # 9 times the rows: about a third of the width (1 / sqrt(9)); at least 45 % narrower
        assert w_large < 0.55 * w_small, (k, w_small, w_large)


def test_intervals_are_reproducible_to_the_byte_and_move_with_the_seed() -> None:
    a = _answers(300, seed=2)
    first = json.dumps(_intervals(a, Bootstrap(seed=7)))
    assert first == json.dumps(_intervals(a, Bootstrap(seed=7)))
    assert first != json.dumps(_intervals(a, Bootstrap(seed=8)))


def test_weights_are_resamples_of_n_rows_in_blocks_that_do_not_depend_on_the_caller() -> None:
    boot = Bootstrap(resamples=250, seed=1)
    blocks = list(weights(5_000, boot))  # many rows: several blocks of the weight matrix
    assert len(blocks) > 1 and sum(len(b) for b in blocks) == 250
    W = np.concatenate(blocks)
    assert np.all(W.sum(axis=1) == 5_000)
    # each row appears once per resample on average (multinomial counts)
    assert W.mean() == pytest.approx(1.0, abs=1e-12)
    assert np.array_equal(W, np.concatenate(list(weights(5_000, boot))))


def test_a_metric_undefined_on_most_resamples_has_no_interval() -> None:
    assert interval(np.array([np.nan] * 8 + [0.5, 0.6])) is None
    assert interval(np.array([0.5] * 10)) == (0.5, 0.5)
