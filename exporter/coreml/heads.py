"""The ends of an estimator: probabilities from scores, and labels the sklearn way.

Only messages whose semantics the Core ML format states exactly are used here
(see ``evaluator.py`` for the wording each one is evaluated by):

* probabilities from raw scores: a ``NeuralNetwork`` with one ``SoftmaxLayer``
  ("x_i <- e^{x_i} / sum_i e^{x_i}" along the channel axis). Not
  ``GLMClassifier`` or ``TreeEnsembleClassifier`` softmax post-transforms: the
  format's comments define the binary reference class only, so multinomial
  softmax there would be a guess. Binary models feed ``[0, s]`` to the softmax,
  which is ``[1 - sigmoid(s), sigmoid(s)]``.
* labels: sklearn breaks ties towards the first class (``np.argmax``) or
  compares a score with 0 (``> 0`` for LogisticRegression and
  HistGradientBoosting, ``>= 0`` for GradientBoosting). The format does not say
  which class a classifier picks when scores tie, so skedge never lets a
  classifier see a tie: a ``GLMRegressor`` computes every pairwise difference
  ``s_i - s_j`` (weights +1/-1: the sign is exact in floating point, zero
  exactly when equal) and a one-tree ``TreeEnsembleClassifier`` walks sklearn's
  first-maximum scan over those signs to a leaf that votes 1.0 for exactly one
  class. Binary rules are a single branch node (``BranchOnValueGreaterThan``
  or ``...GreaterThanEqual`` on the score).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._builder import ARRAY, INT64, STRING, Builder, CoreMLUnsupported, Var
from ._proto import proto

__all__ = ["softmax", "scale", "argmax_label", "threshold_label", "class_labels", "MAX_ARGMAX_CLASSES"]

# the first-maximum scan tree has 2^(k-1) leaves: beyond this many classes it would outgrow any app bundle
MAX_ARGMAX_CLASSES = 12


def class_labels(classes: Any) -> tuple[str, list[Any]]:
    """("int64" | "string", labels) for sklearn's ``classes_``; Core ML labels are int64 or strings only."""
    values = list(np.asarray(classes).tolist())
    if all(isinstance(c, str) for c in values):
        return STRING, values
    if all(isinstance(c, int) and not isinstance(c, bool) for c in values):
        return INT64, [int(c) for c in values]
    kinds = sorted({type(c).__name__ for c in values})
    raise CoreMLUnsupported(f"class labels of type {', '.join(kinds)}: Core ML classifiers take int64 or string "
                            "labels only (encode the target as integers or strings)")


def softmax(b: Builder, scores: Var, out_name: str) -> Var:
    """``out = softmax(scores)`` over the array, as a one-layer ``NeuralNetwork``."""
    out = Var(out_name, ARRAY, scores.width)
    m = b.model([scores], [out], "softmax")
    layer = m.neuralNetwork.layers.add()
    layer.name = "softmax"
    layer.input.append(scores.name)
    layer.output.append(out.name)
    layer.softmax.SetInParent()
    return out


def scale(b: Builder, x: Var, factor: float, out: Var) -> Var:
    """``out = factor * x`` (a ``Scaler`` with one scale value: "applied to each element of the array")."""
    m = b.model([x], [out], "scale")
    m.scaler.shiftValue.append(0.0)
    m.scaler.scaleValue.append(float(factor))
    return out


def _set_labels(te: Any, kind: str, labels: Sequence[Any]) -> None:
    if kind == STRING:
        te.stringClassLabels.vector.extend([str(c) for c in labels])
    else:
        te.int64ClassLabels.vector.extend([int(c) for c in labels])


def _label_classifier(b: Builder, x: Var, classes: Any, out_name: str, hint: str) -> tuple[Any, Any]:
    kind, labels = class_labels(classes)
    out = Var(out_name, kind)
    m = b.model([x], [out], hint)
    m.description.predictedFeatureName = out.name
    te = m.treeEnsembleClassifier
    _set_labels(te, kind, labels)
    params = te.treeEnsemble
    params.numPredictionDimensions = len(labels)
    params.basePredictionValue.extend([0.0] * len(labels))
    te.postEvaluationTransform = proto().TreeEnsemble_pb2.NoTransform
    return params, out


def _leaf(params: Any, node_id: int, cls: int) -> None:
    n = params.nodes.add()
    n.treeId = 0
    n.nodeId = node_id
    n.nodeBehavior = proto().TreeEnsemble_pb2.TreeEnsembleParameters.TreeNode.LeafNode
    e = n.evaluationInfo.add()
    e.evaluationIndex = cls
    e.evaluationValue = 1.0


def threshold_label(b: Builder, scores: Var, index: int, mode: str, value: float, classes: Any, out_name: str
                    ) -> Var:
    """Binary label: ``classes[1]`` where ``scores[index] <mode> value``, else ``classes[0]``.

    ``mode`` is ``">"`` or ``">="`` (sklearn's rule for the estimator at hand).
    """
    if len(classes) != 2:
        raise ValueError("threshold_label is for two classes")
    tn = proto().TreeEnsemble_pb2.TreeEnsembleParameters.TreeNode
    behaviour = {">": tn.BranchOnValueGreaterThan, ">=": tn.BranchOnValueGreaterThanEqual}[mode]
    params, out = _label_classifier(b, scores, classes, out_name, "label")
    root = params.nodes.add()
    root.treeId = 0
    root.nodeId = 0
    root.nodeBehavior = behaviour
    root.branchFeatureIndex = index
    root.branchFeatureValue = float(value)
    root.trueChildNodeId = 1
    root.falseChildNodeId = 2
    _leaf(params, 1, 1)
    _leaf(params, 2, 0)
    return out


def argmax_label(b: Builder, scores: Var, classes: Any, out_name: str) -> Var:
    """Label = ``classes[first index of the maximum of scores]``, exactly as ``np.argmax``."""
    k = scores.width
    if k != len(classes):
        raise ValueError(f"{k} scores for {len(classes)} classes")
    if k > MAX_ARGMAX_CLASSES:
        raise CoreMLUnsupported(f"{k} classes: skedge's exact tie-breaking label tree grows as 2^(k-1) and is "
                                f"limited to {MAX_ARGMAX_CLASSES} classes")
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    where = {p: n for n, p in enumerate(pairs)}
    margins = b.var("margins", ARRAY, len(pairs))
    m = b.model([scores], [margins], "margins")
    m.description.predictedFeatureName = margins.name
    glm = m.glmRegressor
    for i, j in pairs:
        w = np.zeros(k)
        w[i], w[j] = 1.0, -1.0
        glm.weights.add().value.extend(w.tolist())
        glm.offset.append(0.0)
    glm.postEvaluationTransform = proto().GLMRegressor_pb2.GLMRegressor.NoTransform

    params, out = _label_classifier(b, margins, classes, out_name, "label")
    tn = proto().TreeEnsemble_pb2.TreeEnsembleParameters.TreeNode
    counter = iter(range(2 ** k))

    def scan(best: int, j: int) -> int:
        """Node id of the subtree that has ``best`` as the first maximum of scores[:j]."""
        nid = next(counter)
        if j == k:
            _leaf(params, nid, best)
            return nid
        node = params.nodes.add()  # appended now, children filled in below (ids are explicit)
        node.treeId = 0
        node.nodeId = nid
        node.nodeBehavior = tn.BranchOnValueLessThan
        node.branchFeatureIndex = where[(best, j)]  # scores[best] - scores[j]
        node.branchFeatureValue = 0.0
        node.trueChildNodeId = scan(j, j + 1)  # strictly greater: j is the new first maximum
        node.falseChildNodeId = scan(best, j + 1)  # equal or smaller: the earlier class keeps it
        return nid

    scan(0, 1)
    return out
