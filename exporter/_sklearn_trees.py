"""Reading sklearn's fitted tree structures once, for every target's converter.

HistGradientBoosting keeps its trees as ``TreePredictor.nodes`` record arrays,
not as ``tree_`` objects; this turns them into the arrays the ONNX and Core ML
ensembles both take (left child -1 marks a leaf, as in ``sklearn.tree``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["HGBTree", "hgb_trees"]


@dataclass(frozen=True)
class HGBTree:
    """One tree of one iteration; ``target`` is the class it adds to (0 for one raw score)."""

    target: int
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray  # float64: HistGradientBoosting compares X in float64
    missing_left: np.ndarray
    leaves: dict[int, float]


def hgb_trees(est: Any) -> Iterator[HGBTree]:
    """Every tree of a fitted HistGradientBoosting model; ValueError for what no target supports."""
    if getattr(est, "_preprocessor", None) is not None or (
            getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_)):
        raise ValueError("HistGradientBoosting with native categorical features is not supported; "
                         "one-hot encode them in the pipeline instead")
    for iteration in est._predictors:
        for j, pred in enumerate(iteration):
            nodes = pred.nodes
            if np.any(nodes["is_categorical"]):
                raise ValueError("HistGradientBoosting categorical splits are not supported")
            leaf = nodes["is_leaf"].astype(bool)
            yield HGBTree(
                target=j,
                left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
                right=nodes["right"].astype(np.int64),
                feature=nodes["feature_idx"].astype(np.int64),
                threshold=nodes["num_threshold"].astype(np.float64),
                missing_left=nodes["missing_go_to_left"].astype(bool),
                leaves={int(n): float(nodes["value"][n]) for n in np.where(leaf)[0]},
            )
