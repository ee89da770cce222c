"""Reading sklearn's fitted tree structures once, for every target's converter.

HistGradientBoosting keeps its trees as ``TreePredictor.nodes`` record arrays,
not as ``tree_`` objects; this turns them into the arrays the ONNX and Core ML
ensembles both take (left child -1 marks a leaf, as in ``sklearn.tree``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["HGBTree", "HGBCategoricalTree", "Splits", "float32_split", "float32_splits", "hgb_trees",
           "hgb_categorical_trees", "tree_splits"]

_F32_MAX = float(np.finfo(np.float32).max)
_HALF_ULP_AT_MAX = 2.0 ** 103  # half the float32 spacing just below 2^128
_F32_LIMIT = _F32_MAX + _HALF_ULP_AT_MAX  # doubles from here on round to float32 infinity


def float32_split(t: float) -> float:
    """The largest double ``T`` with ``x <= T`` exactly when ``float32(x) <= t``, for every double ``x``.

    ``f`` = the largest float32 ``<= t``; float32 rounding sends ``x`` to ``f`` or
    below exactly when ``x`` is at most the midpoint ``m`` between ``f`` and the
    next float32, ``m`` itself included only when it rounds down (ties go to the
    even significand). All arithmetic is in float64 on purpose: numpy 2 compares
    ``np.float32(x) <= python_float`` in float32. sklearn writes ``+inf`` for a
    split that sends every present value left and only NaN right: it stays.
    """
    t = float(t)
    if t != t:
        raise ValueError("a NaN tree threshold")
    if t == np.inf:
        return t
    if t < -_F32_MAX:  # only values that round to float32 -inf pass: x <= -F32_LIMIT (the tie goes to -inf)
        return -_F32_LIMIT
    with np.errstate(over="ignore"):  # t beyond the float32 range rounds to inf; the next line steps back
        f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    up = np.nextafter(f, np.float32(np.inf))
    m = float(f) + _HALF_ULP_AT_MAX if np.isinf(up) else (float(f) + float(up)) / 2.0  # exact in float64
    even = (int(np.asarray(f, dtype=np.float32).view(np.uint32)) & 1) == 0
    return m if even else float(np.nextafter(m, -np.inf))


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
            yield _hgb_tree(nodes, j)


def _hgb_tree(nodes: np.ndarray, target: int) -> HGBTree:
    """One HistGradientBoosting predictor's nodes as an HGBTree (the numeric part of every tree)."""
    leaf = nodes["is_leaf"].astype(bool)
    return HGBTree(
        target=target,
        left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
        right=nodes["right"].astype(np.int64),
        feature=nodes["feature_idx"].astype(np.int64),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        leaves={int(n): float(nodes["value"][n]) for n in np.where(leaf)[0]},
    )


@dataclass(frozen=True)
class Splits:
    """Every split node of a fitted tree model, in the columns the model itself sees.

    ``float32``: the model tests ``float32(x) <= threshold`` (sklearn's own trees); otherwise ``x <=
    threshold`` in double (HistGradientBoosting). ``paths(X)`` gives the rows × nodes indicator of the
    nodes each row passes (``node`` indexes its columns), or is None where sklearn has no such walk.
    """

    feature: np.ndarray
    threshold: np.ndarray
    node: np.ndarray
    float32: bool
    paths: Callable[[np.ndarray], Any] | None


def _tree_list(est: Any) -> list[tuple[Any, np.ndarray | None]] | None:
    if hasattr(est, "tree_"):
        return [(est, None)]
    trees = getattr(est, "estimators_", None)
    if trees is None:
        return None
    flat = list(np.ravel(np.asarray(trees, dtype=object)))
    if not flat or not all(hasattr(t, "tree_") for t in flat):
        return None
    feats = getattr(est, "estimators_features_", None)
    if feats is None:
        return [(t, None) for t in flat]
    return [(t, np.asarray(fs, dtype=np.int64)) for t, fs in zip(flat, feats, strict=True)]


def _lightgbm_splits(est: Any) -> Splits:
    """LightGBM compares ``x <= threshold`` in double (numeric splits; categorical ones are refused anyway)."""
    f: list[int] = []
    t: list[float] = []
    for info in est.booster_.dump_model()["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "leaf_value" in node:
                continue
            if node.get("decision_type") == "<=":
                f.append(int(node["split_feature"]))
                t.append(float(node["threshold"]))
            stack.extend((node["left_child"], node["right_child"]))
    return Splits(np.asarray(f, dtype=np.int64), np.asarray(t, dtype=np.float64), np.arange(len(f)), False, None)


def _xgboost_splits(est: Any) -> Splits:
    """XGBoost goes left where ``float32(x) < split``: as skedge's test ``float32(x) <= t``, ``t`` is the
    float32 just below the split."""
    frame = est.get_booster().trees_to_dataframe()
    frame = frame[frame["Feature"] != "Leaf"]
    names = est.get_booster().feature_names
    index = {n: i for i, n in enumerate(names)} if names else {}
    feature = np.asarray([index[n] if n in index else int(str(n).lstrip("f")) for n in frame["Feature"]],
                         dtype=np.int64)
    split = frame["Split"].to_numpy(dtype=np.float32)
    below = np.nextafter(split, np.float32(-np.inf)).astype(np.float64)
    return Splits(feature, below, np.arange(len(feature)), True, None)


def tree_splits(est: Any) -> Splits | None:
    """The split nodes of a supported tree model (None for a model without trees)."""
    module = type(est).__module__.split(".")[0]
    if module == "lightgbm" and hasattr(est, "booster_"):
        return _lightgbm_splits(est)
    if module == "xgboost" and hasattr(est, "get_booster"):
        return _xgboost_splits(est)
    if hasattr(est, "_predictors"):
        hgb = list(hgb_trees(est))
        f, t, at = [], [], []
        start = 0
        for tree in hgb:
            br = np.where(tree.left != -1)[0]
            f.append(tree.feature[br])
            t.append(tree.threshold[br])
            at.append(br + start)
            start += len(tree.left)
        feature = np.concatenate(f) if f else np.zeros(0, dtype=np.int64)
        return Splits(feature, np.concatenate(t) if t else np.zeros(0),
                      np.concatenate(at) if at else np.zeros(0, dtype=np.int64), False, lambda x: _hgb_paths(hgb, x))
    trees = _tree_list(est)
    if trees is None:
        return None
    f, t, nodes = [], [], []
    offset = 0
    for tree, fs in trees:
        tr = tree.tree_
        br = np.where(tr.children_left != -1)[0]
        feat = tr.feature[br].astype(np.int64)
        f.append(fs[feat] if fs is not None else feat)
        t.append(tr.threshold[br].astype(np.float64))
        nodes.append(br + offset)
        offset += tr.node_count

    def paths(x: np.ndarray) -> Any:
        from scipy import sparse

        x32 = np.ascontiguousarray(x, dtype=np.float32)
        # the Cython walk itself: no input validation (a tree fitted on a DataFrame would warn on an array)
        return sparse.hstack([tree.tree_.decision_path(np.ascontiguousarray(x32[:, fs]) if fs is not None else x32)
                              for tree, fs in trees], format="csc")

    return Splits(np.concatenate(f), np.concatenate(t), np.concatenate(nodes), True, paths)


def _hgb_paths(trees: list[HGBTree], x: np.ndarray) -> Any:
    """Rows x nodes: which nodes each row passes, walked as HistGradientBoosting's predictor walks (``x <=
    threshold`` in double, NaN where training sent it), so a threshold's probe starts from a row that reaches it."""
    from scipy import sparse

    x = np.asarray(x, dtype=np.float64)
    blocks = []
    for tree in trees:
        reach = np.zeros((len(x), len(tree.left)), dtype=bool)
        reach[:, 0] = True
        stack = [0]
        while stack:
            node = stack.pop()
            if tree.left[node] == -1:
                continue
            v = x[:, tree.feature[node]]
            left = (v <= tree.threshold[node]) | (np.isnan(v) & bool(tree.missing_left[node]))
            reach[:, tree.left[node]] = reach[:, node] & left
            reach[:, tree.right[node]] = reach[:, node] & ~left
            stack.extend((int(tree.left[node]), int(tree.right[node])))
        blocks.append(sparse.csc_matrix(reach))
    return sparse.hstack(blocks, format="csc")


@dataclass(frozen=True)
class HGBCategoricalTree:
    """One HistGradientBoosting tree whose categorical splits are kept: ``left_codes[node]`` is the set of
    category codes that go left at a categorical node (codes of the model's own ordinal encoding)."""

    tree: HGBTree
    is_categorical: np.ndarray
    left_codes: dict[int, frozenset[int]]


def hgb_categorical_trees(est: Any) -> Iterator[HGBCategoricalTree]:
    """Every tree of a fitted HistGradientBoosting model, categorical splits included (for the converters
    that translate them; ``hgb_trees`` refuses them)."""
    for iteration in est._predictors:
        for j, pred in enumerate(iteration):
            nodes = pred.nodes
            leaf = nodes["is_leaf"].astype(bool)
            cat = nodes["is_categorical"].astype(bool) & ~leaf
            bitsets = np.asarray(pred.raw_left_cat_bitsets, dtype=np.uint32)
            left_codes = {}
            for n in np.where(cat)[0]:
                words = bitsets[int(nodes["bitset_idx"][n])]
                # sklearn's in_bitset: (bitset[v // 32] >> (v % 32)) & 1, v the uint8 category code
                left_codes[int(n)] = frozenset(v for v in range(32 * len(words)) if (words[v // 32] >> (v % 32)) & 1)
            yield HGBCategoricalTree(
                tree=_hgb_tree(nodes, j),
                is_categorical=cat,
                left_codes=left_codes,
            )


def float32_splits(t: np.ndarray) -> np.ndarray:
    """``float32_split`` of every threshold at once (the same arithmetic, vectorised; all in float64)."""
    t = np.asarray(t, dtype=np.float64)
    if np.isnan(t).any():
        raise ValueError("a NaN tree threshold")
    with np.errstate(over="ignore"):
        f = t.astype(np.float32)
    with np.errstate(over="ignore"):
        f = np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f)
        up = np.nextafter(f, np.float32(np.inf))
    fd = f.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        m = np.where(np.isinf(up), fd + _HALF_ULP_AT_MAX, (fd + up.astype(np.float64)) / 2.0)
    even = (f.view(np.uint32) & 1) == 0
    out = np.where(even, m, np.nextafter(m, -np.inf))
    out = np.where(t < -_F32_MAX, -_F32_LIMIT, out)
    return np.where(t == np.inf, np.inf, out)
