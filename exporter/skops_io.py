"""Loading a user's fitted pipeline from a skops file: no pickle, and no type the user did not trust.

skops' trust model is the boundary (DESIGN.md, "Trust"): a file loads with skops' own default trusted
types plus the types the user names (``--trust TYPE`` / ``trusted=[...]``), never more. An earlier
version trusted every name under ``sklearn.`` or ``numpy.``, and a crafted file ran code through a numpy
function that executes a string: module prefixes say nothing about what a name does.

skedge adds two (name, node kind) pairs by itself, both built without calling anything the file names:
its own ``OutlierClipper`` restored as a plain object (``ObjectNode``: ``__new__`` and its attributes), and
``numpy.dtype`` as a ``DTypeNode`` (skops reads an empty array with ``allow_pickle=False`` and takes its
dtype; the name is never resolved; every fitted OneHotEncoder holds one). skops' ``get_untrusted_types``
reports names, not how they are built, so the node kinds are read from the file's schema here; the same
name built any other way is refused.

Types the user does trust are checked again after loading where their content could still do harm:
sklearn's tree arrays are indexed without bounds checks (the reason skops does not trust them by
default), so every tree's child and feature indices are checked before sklearn or a converter reads them.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from skedge.runtime._errors import ExportError

__all__ = ["load_pipeline", "SKEDGE_TYPES"]

# (type, the only node kind it is trusted as): built without a call to anything the file names
SKEDGE_TYPES: dict[str, str] = {"skedge.trainer.features.OutlierClipper": "ObjectNode", "numpy.dtype": "DTypeNode"}
_MAX_BYTES = 4 << 30  # a pipeline larger than 4 GiB is not something a device bundle can come from


def load_pipeline(path: Path, *, trusted: Iterable[str] = ()) -> Any:
    """A fitted pipeline from ``path`` (a .skops file), or ``ExportError`` naming what is not trusted."""
    import skops.io as sio

    path = Path(path)
    if path.suffix != ".skops":
        raise ExportError(f"{path}: expected a .skops file (skops.io.dump); pickle files are never loaded")
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise ExportError(f"{path}: {path.stat().st_size:,} bytes is larger than a pipeline skedge loads")
        data = path.read_bytes()  # one read: the bytes checked are the bytes loaded
    except OSError as exc:
        raise ExportError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    named = {t.strip() for t in trusted if t.strip()}
    try:
        unknown = set(sio.get_untrusted_types(data=data))
        loaders = _loaders_by_type(data)
    except Exception as exc:  # zipfile, json and skops' own errors for a corrupt or foreign file
        raise ExportError(f"{path}: not a readable skops file ({type(exc).__name__}: {exc})") from None
    own = {t for t in unknown & SKEDGE_TYPES.keys() if loaders.get(t, set()) <= {SKEDGE_TYPES[t]}}
    refused = sorted(unknown - named - own)
    if refused:
        raise ExportError(_refusal(path, refused, loaders))
    try:
        pipeline = sio.loads(data, trusted=sorted((unknown & named) | own))
    except Exception as exc:
        raise ExportError(f"{path}: skops could not load it ({type(exc).__name__}: {exc})") from None
    _check_trees(pipeline, path)
    return pipeline


def _refusal(path: Path, refused: list[str], loaders: dict[str, set[str]]) -> str:
    from skops.io.exceptions import UNTRUSTED_TYPE_REASONS

    def one(name: str) -> str:
        how = "/".join(sorted(loaders.get(name, set()))) or "?"
        why = " (sklearn indexes its arrays without bounds checks; skedge checks them when you trust it)" \
            if name in UNTRUSTED_TYPE_REASONS else ""
        return f"{name} [{how}]{why}"

    flags = " ".join(f"--trust {t}" for t in refused)
    return (f"{path} holds types that are not trusted by default: {'; '.join(one(t) for t in refused)}. "
            f"Nothing was loaded. If you made this file yourself or trust whoever did, name each type: {flags} "
            f"(export(..., trusted=[...]) in Python)")


def _loaders_by_type(data: bytes) -> dict[str, set[str]]:
    """Every ``module.Class`` the schema names, with the node kinds (how skops builds it) it appears as."""
    with zipfile.ZipFile(BytesIO(data)) as zf:
        schema = json.loads(zf.read("schema.json"))
    out: dict[str, set[str]] = {}
    stack: list[Any] = [schema]
    while stack:  # iterative: a crafted, deeply nested schema must not exhaust the recursion limit
        node = stack.pop()
        if isinstance(node, dict):
            if "__loader__" in node and "__module__" in node and "__class__" in node:
                out.setdefault(f"{node['__module__']}.{node['__class__']}", set()).add(str(node["__loader__"]))
            reduce = node.get("__reduce__")
            if isinstance(reduce, dict) and "constructor" in reduce:  # older skops: the constructor named apart
                out.setdefault(str(reduce["constructor"]), set()).add("ReduceNode")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _estimators(obj: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Every estimator reachable from ``obj`` through attributes, lists, tuples and dicts."""
    from sklearn.base import BaseEstimator

    seen = set() if seen is None else seen
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, BaseEstimator):
            yield o
            stack.extend(vars(o).values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, np.ndarray) and o.dtype == object:
            stack.extend(o.ravel().tolist())


def _check_trees(pipeline: Any, path: Path) -> None:
    """Refuse tree arrays whose indices point outside the tree or the input: sklearn would read out of bounds."""
    for est in _estimators(pipeline):
        tree = getattr(est, "tree_", None)
        n_features = getattr(est, "n_features_in_", None)
        if tree is not None and hasattr(tree, "children_left"):
            _check_nodes(path, type(est).__name__, tree.children_left, tree.children_right, tree.feature,
                         n_features if n_features is not None else tree.n_features, leaf=-1)
        for pred in _hgb_predictors(est):
            nodes = pred.nodes
            leaf = nodes["is_leaf"].astype(bool)
            left = np.where(leaf, -1, nodes["left"].astype(np.int64))
            right = np.where(leaf, -1, nodes["right"].astype(np.int64))
            _check_nodes(path, type(est).__name__, left, right, np.where(leaf, -2, nodes["feature_idx"]),
                         n_features, leaf=-1)
            bitsets = getattr(pred, "raw_left_cat_bitsets", None)
            cat = nodes["is_categorical"].astype(bool) & ~leaf
            if cat.any() and (bitsets is None or nodes["bitset_idx"][cat].max() >= len(bitsets)):
                raise ExportError(f"{path}: a {type(est).__name__} tree names a category set it does not have: "
                                  "the file is damaged or crafted")


def _hgb_predictors(est: Any) -> Iterator[Any]:
    for group in getattr(est, "_predictors", None) or []:
        yield from group


def _check_nodes(path: Path, owner: str, left: Any, right: Any, feature: Any, n_features: Any, *, leaf: int) -> None:
    left, right, feature = (np.asarray(a, dtype=np.int64) for a in (left, right, feature))
    n = len(left)
    if not (len(right) == len(feature) == n) or n == 0:
        raise ExportError(f"{path}: a {owner} tree has node arrays of different lengths: "
                          "the file is damaged or crafted")
    split = left != leaf
    idx = np.arange(n)
    # sklearn numbers a node's children after it, so "child > parent" also rules out cycles
    bad = split & ((left <= idx) | (left >= n) | (right <= idx) | (right >= n))
    bad |= ~split & (right != leaf)
    if n_features is not None:
        bad |= split & ((feature < 0) | (feature >= int(n_features)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ExportError(f"{path}: node {i} of a {owner} tree points outside the tree or the input "
                          f"(children {int(left[i])}, {int(right[i])}, feature {int(feature[i])}, {n} nodes): "
                          "the file is damaged or crafted")
