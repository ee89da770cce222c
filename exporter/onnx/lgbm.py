"""LightGBM's sklearn estimators (LGBMClassifier, LGBMRegressor), exact: double thresholds on double input.

Why not onnxmltools': LightGBM compares float64 inputs with float64 thresholds, onnxmltools' trees compare
float32 inputs with float32 thresholds, so a value one float64 step from a threshold takes the other branch
(measured: 0.11 probability off on such rows; casting the input to float32 first cannot fix it). Here the
trees are read from ``booster_.dump_model()`` (thresholds and leaf values at full double precision) into
skedge's ``TreeEnsembleRegressor`` (trees.py) with double thresholds, fed the double input as it is.

Missing values as LightGBM routes them: ``missing_type`` "NaN" sends NaN the ``default_left`` way; "None"
turns NaN into 0.0 first, so NaN goes where 0.0 goes. "Zero" (``zero_as_missing``) and categorical splits
are refused. The label is the first maximum of the probabilities, as ``LGBMClassifier.predict`` takes it.

lightgbm itself is never imported: the fitted estimator carries everything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._builder import DOUBLE, INT64, Graph, Var
from ._context import Context
from .trees import Ensemble

__all__ = ["convert_lgbm_classifier", "convert_lgbm_regressor"]

_IDENTITY_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")


class _Tree:
    """One LightGBM tree in sklearn's array layout (left child -1 marks a leaf), nodes in preorder."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.left: list[int] = []
        self.right: list[int] = []
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.missing_left: list[bool] = []
        self.leaves: dict[int, list[tuple[int, float]]] = {}

    def visit(self, node: dict[str, Any]) -> int:
        nid = len(self.left)
        self.left.append(-1)
        self.right.append(-1)
        self.feature.append(0)
        self.threshold.append(0.0)
        self.missing_left.append(False)
        if "leaf_value" in node:
            self.leaves[nid] = [(self.target, float(node["leaf_value"]))]
            return nid
        if node.get("decision_type") != "<=":
            raise ValueError("LightGBM categorical splits are not supported; one-hot encode the column instead")
        t = float(node["threshold"])
        kind = node.get("missing_type", "None")
        if kind == "NaN":
            goes_left = bool(node.get("default_left", True))
        elif kind == "None":
            goes_left = 0.0 <= t  # LightGBM reads NaN as 0.0
        else:
            raise ValueError(f"LightGBM missing_type {kind!r} (zero_as_missing) is not supported")
        self.feature[nid] = int(node["split_feature"])
        self.threshold[nid] = t
        self.missing_left[nid] = goes_left
        self.left[nid] = self.visit(node["left_child"])
        self.right[nid] = self.visit(node["right_child"])
        return nid


def _ensemble(dump: dict[str, Any], n_targets: int) -> Ensemble:
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    ens = Ensemble(n_targets=n_targets)
    for i, info in enumerate(dump["tree_info"]):
        tree = _Tree(i % per_iteration if n_targets > 1 else 0)
        tree.visit(info["tree_structure"])
        ens.add_tree(np.asarray(tree.left), np.asarray(tree.right), np.asarray(tree.feature),
                     np.asarray(tree.threshold, dtype=np.float64), np.asarray(tree.missing_left), tree.leaves)
    return ens


def _raw(g: Graph, est: Any, x: Var | list[Var], n_targets: int, hint: str) -> Var:
    dump = est.booster_.dump_model()
    if dump.get("average_output"):
        raise ValueError("LightGBM random forest mode (boosting='rf') is not supported")
    m = g.cast(g.matrix(x, f"{hint}_in"), DOUBLE, f"{hint}_in_double")
    return _ensemble(dump, n_targets).emit(g, m, f"{hint}_raw")


def convert_lgbm_regressor(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    objective = str(est.booster_.dump_model().get("objective", "")).split()[0]
    if objective not in _IDENTITY_OBJECTIVES:
        raise ValueError(f"LGBMRegressor(objective={objective!r}) is not supported (its output is not the raw sum)")
    return {"value": _raw(g, est, x, 1, "lgbm")}


def convert_lgbm_classifier(g: Graph, est: Any, x: Var | list[Var], ctx: Context) -> dict[str, Var]:
    n_classes = len(est.classes_)
    objective = str(est.booster_.dump_model().get("objective", ""))
    if n_classes == 2:
        if not objective.startswith("binary"):
            raise ValueError(f"LGBMClassifier(objective={objective.split()[0]!r}) is not supported")
        sigmoid = float(objective.split("sigmoid:")[1].split()[0]) if "sigmoid:" in objective else 1.0
        raw = _raw(g, est, x, 1, "lgbm")
        z = g.op1("Mul", [raw.name, g.const(np.array([[-sigmoid]]), "lgbm_neg_sigmoid")], "lgbm_z")
        # LightGBM: 1 / (1 + exp(-sigmoid * raw)), as it writes it
        p1 = g.op1("Div", [g.const(np.array([[1.0]]), "one"),
                           g.op1("Add", [g.const(np.array([[1.0]]), "one"), g.op1("Exp", [z], "lgbm_exp")],
                                 "lgbm_den")], "lgbm_p1")
        p0 = g.op1("Sub", [g.const(np.array([[1.0]]), "one"), p1], "lgbm_p0")
        proba = g.op1("Concat", [p0, p1], "probabilities", axis=1)
    else:
        if not objective.startswith("multiclass") or objective.startswith("multiclassova"):
            raise ValueError(f"LGBMClassifier(objective={objective.split()[0]!r}) is not supported")
        raw = _raw(g, est, x, n_classes, "lgbm")
        proba = g.op1("Softmax", [raw.name], "probabilities", axis=1)
    label = g.op1("ArgMax", [proba], "lgbm_label", axis=1, keepdims=0, select_last_index=0)
    return {"probabilities": Var(proba, DOUBLE, n_classes), "label_index": Var(label, INT64, 1)}
