"""The reference evaluator against known answers, independent of skedge's converter.

Two sources of truth: tiny specs written here message by message with outputs
worked out by hand, and specs written by coremltools' own scikit-learn
converter (committed fixtures, made with scikit-learn 1.5 by
``fixtures/coreml/make_fixtures.py``) with the answers scikit-learn gave.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skedge.exporter.coreml import SpecEvaluator
from skedge.exporter.coreml._proto import proto
from skedge.runtime import BundleError, SchemaError

FIXTURES = Path(__file__).parent / "fixtures" / "coreml"
P = proto()
TN = P.TreeEnsemble_pb2.TreeEnsembleParameters.TreeNode


# -- writing specs by hand ------------------------------------------------------
def feature(fd: Any, name: str, kind: str, width: int = 1) -> None:
    fd.name = name
    if kind == "double":
        fd.type.doubleType.SetInParent()
    elif kind == "string":
        fd.type.stringType.SetInParent()
    elif kind == "int64":
        fd.type.int64Type.SetInParent()
    else:
        fd.type.multiArrayType.shape.append(width)
        fd.type.multiArrayType.dataType = P.FeatureTypes_pb2.ArrayFeatureType.DOUBLE


def model(inputs: list[tuple[str, str, int]], outputs: list[tuple[str, str, int]], version: int = 3) -> Any:
    m = P.Model_pb2.Model()
    m.specificationVersion = version
    for name, kind, width in inputs:
        feature(m.description.input.add(), name, kind, width)
    for name, kind, width in outputs:
        feature(m.description.output.add(), name, kind, width)
    return m


def branch(params: Any, tree: int, node: int, behaviour: int, index: int, value: float, yes: int, no: int,
           nan_yes: bool = False) -> None:
    n = params.nodes.add()
    n.treeId, n.nodeId, n.nodeBehavior = tree, node, behaviour
    n.branchFeatureIndex, n.branchFeatureValue = index, value
    n.trueChildNodeId, n.falseChildNodeId, n.missingValueTracksTrueChild = yes, no, nan_yes


def leaf(params: Any, tree: int, node: int, *values: tuple[int, float]) -> None:
    n = params.nodes.add()
    n.treeId, n.nodeId, n.nodeBehavior = tree, node, TN.LeafNode
    for index, value in values:
        e = n.evaluationInfo.add()
        e.evaluationIndex, e.evaluationValue = index, value


def one_tree(nan_yes: bool = False) -> Any:
    """x[0] <= 1.5 ? +10 : (x[1] < 0 ? +20 : +30), on a base of 0.5."""
    m = model([("x", "array", 2)], [("y", "double", 1)])
    te = m.treeEnsembleRegressor
    p = te.treeEnsemble
    p.numPredictionDimensions = 1
    p.basePredictionValue.append(0.5)
    branch(p, 0, 0, TN.BranchOnValueLessThanEqual, 0, 1.5, 1, 2, nan_yes)
    leaf(p, 0, 1, (0, 10.0))
    branch(p, 0, 2, TN.BranchOnValueLessThan, 1, 0.0, 3, 4)
    leaf(p, 0, 3, (0, 20.0))
    leaf(p, 0, 4, (0, 30.0))
    return m


def run(m: Any, **feeds: Any) -> dict[str, Any]:
    return SpecEvaluator(m.SerializeToString()).run({k: np.asarray(v) for k, v in feeds.items()})


# -- known answers ------------------------------------------------------------------
def test_one_tree_by_hand() -> None:
    x = [[1.0, 5.0], [1.5, 5.0], [1.5000000000000002, -1.0], [2.0, 0.0], [np.nan, -1.0]]
    assert run(one_tree(), x=x)["y"].tolist() == [10.5, 10.5, 20.5, 30.5, 20.5]  # NaN: false child
    assert run(one_tree(nan_yes=True), x=x)["y"].tolist()[-1] == 10.5  # missingValueTracksTrueChild


def test_trees_add_to_their_dimensions_in_order() -> None:
    m = model([("x", "array", 1)], [("y", "array", 2)])
    p = m.treeEnsembleRegressor.treeEnsemble
    p.numPredictionDimensions = 2
    p.basePredictionValue.extend([1.0, -1.0])
    branch(p, 0, 0, TN.BranchOnValueGreaterThan, 0, 0.0, 1, 2)
    leaf(p, 0, 1, (0, 0.25), (1, 2.0))
    leaf(p, 0, 2, (1, -3.0))
    leaf(p, 7, 0, (0, 0.125))  # a one-leaf tree, ids need not be consecutive
    got = run(m, x=[[1.0], [-1.0]])["y"]
    assert got.tolist() == [[1.375, 1.0], [1.125, -4.0]]


def test_glm_regressor_by_hand() -> None:
    m = model([("x", "array", 2)], [("y", "array", 2)])
    g = m.glmRegressor
    g.weights.add().value.extend([1.0, 2.0])
    g.weights.add().value.extend([0.0, -1.0])
    g.offset.extend([0.5, 3.0])
    got = run(m, x=[[1.0, 1.0], [-2.0, 4.0]])["y"]
    assert got.tolist() == [[3.5, 2.0], [6.5, -1.0]]


def test_glm_classifier_binary_reference_class() -> None:
    m = model([("x", "array", 2)], [("label", "string", 1)])
    m.description.output.add().name = "proba"
    m.description.output[1].type.dictionaryType.stringKeyType.SetInParent()
    m.description.predictedFeatureName, m.description.predictedProbabilitiesName = "label", "proba"
    g = m.glmClassifier
    g.weights.add().value.extend([2.0, -1.0])
    g.offset.append(0.5)
    g.stringClassLabels.vector.extend(["no", "yes"])
    out = run(m, x=[[1.0, 0.0], [-1.0, 0.0]])
    p_yes = 1 / (1 + math.exp(-2.5))
    assert out["label"].tolist() == ["yes", "no"]
    assert out["proba"].keys == ("no", "yes")
    np.testing.assert_allclose(out["proba"].values[0], [1 - p_yes, p_yes], rtol=0, atol=1e-15)
    with pytest.raises(BundleError, match="does not state which one"):  # z = 0: p = 0.5 for both
        run(m, x=[[0.0, 0.5]])


def test_one_hot_encoder_by_hand() -> None:
    m = model([("c", "string", 1)], [("v", "array", 3)])
    m.oneHotEncoder.stringCategories.vector.extend(["a", "b", ""])
    m.oneHotEncoder.handleUnknown = P.OneHotEncoder_pb2.OneHotEncoder.IgnoreUnknown
    got = run(m, c=np.array(["b", "", "zzz"], dtype=object))["v"]
    assert got.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    m.oneHotEncoder.handleUnknown = P.OneHotEncoder_pb2.OneHotEncoder.ErrorOnUnknown
    with pytest.raises(SchemaError, match="'zzz' is not one of"):
        run(m, c=np.array(["b", "zzz"], dtype=object))


def pipeline_by_hand() -> Any:
    """num (NaN -> 2) and cat (one-hot a/b) -> [num, a, b] -> 2 * (v + [-1, 0, 0]) -> [1, 10, 100] . v + 0.25."""
    top = model([("num", "double", 1), ("cat", "string", 1)], [("y", "double", 1)])
    models = top.pipeline.models
    imp = model([("num", "double", 1)], [("num_i", "double", 1)])
    imp.imputer.imputedDoubleValue, imp.imputer.replaceDoubleValue = 2.0, float("nan")
    ohe = model([("cat", "string", 1)], [("cat_v", "array", 2)])
    ohe.oneHotEncoder.stringCategories.vector.extend(["a", "b"])
    ohe.oneHotEncoder.handleUnknown = P.OneHotEncoder_pb2.OneHotEncoder.IgnoreUnknown
    vec = model([("num_i", "double", 1), ("cat_v", "array", 2)], [("v", "array", 3)])
    for name, dims in (("num_i", 1), ("cat_v", 2)):
        col = vec.featureVectorizer.inputList.add()
        col.inputColumn, col.inputDimensions = name, dims
    sc = model([("v", "array", 3)], [("v", "array", 3)])  # the same name in and out, as coremltools writes
    sc.scaler.shiftValue.extend([-1.0, 0.0, 0.0])
    sc.scaler.scaleValue.extend([2.0])
    glm = model([("v", "array", 3)], [("y", "double", 1)])
    glm.glmRegressor.weights.add().value.extend([1.0, 10.0, 100.0])
    glm.glmRegressor.offset.append(0.25)
    models.extend([imp, ohe, vec, sc, glm])
    return top


def test_pipeline_by_hand() -> None:
    out = run(pipeline_by_hand(), num=[np.nan, 5.0, 0.0], cat=np.array(["b", "a", "c"], dtype=object))
    # row 0: [2, 0, 1] -> [2, 0, 2] -> 2 + 200 + .25; row 1: [5, 1, 0] -> [8, 2, 0] -> 8 + 20 + .25; row 2: [-2, 0, 0]
    assert out["y"].tolist() == [202.25, 28.25, -1.75]


def test_string_imputer_by_hand() -> None:
    m = model([("c", "string", 1)], [("d", "string", 1)])
    m.imputer.imputedStringValue, m.imputer.replaceStringValue = "Biscoe", ""
    assert run(m, c=np.array(["", "Dream"], dtype=object))["d"].tolist() == ["Biscoe", "Dream"]


def network(width: int, version: int = 3) -> Any:
    return model([("s", "array", width)], [("p", "array", width)], version)


def test_softmax_layer_by_hand() -> None:
    m = network(3)
    layer = m.neuralNetwork.layers.add()
    layer.name, layer.softmax.SetInParent()
    layer.input.append("s")
    layer.output.append("p")
    got = run(m, s=[[0.0, math.log(2), math.log(3)], [1000.0, 1000.0, 1000.0]])["p"]
    np.testing.assert_allclose(got, [[1 / 6, 1 / 3, 1 / 2], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15, atol=0)


def clip_network() -> Any:
    m = network(2)
    nn = m.neuralNetwork
    for name, values in (("lo", [0.0, -1.0]), ("hi", [1.0, 1.0])):
        layer = nn.layers.add()
        layer.name = name
        layer.output.append(name)
        layer.loadConstant.shape.extend([2, 1, 1])
        layer.loadConstant.data.floatValue.extend(values)
    for name, ins, out, kind in (("m", ["s", "lo"], "mx", "max"), ("n", ["mx", "hi"], "p", "min")):
        layer = nn.layers.add()
        layer.name = name
        layer.input.extend(ins)
        layer.output.append(out)
        getattr(layer, kind).SetInParent()
    return m


def test_max_min_constant_layers_by_hand() -> None:
    assert run(clip_network(), s=[[-5.0, 0.5], [0.5, 7.0]])["p"].tolist() == [[0.0, 0.5], [0.5, 1.0]]
    with pytest.raises(BundleError, match="NaN reaches a max layer"):
        run(clip_network(), s=[[np.nan, 0.5]])


# -- specs written by coremltools' own converter (scikit-learn 1.5) -----------------------
def fixture(name: str) -> tuple[SpecEvaluator, dict[str, Any], dict[str, np.ndarray]]:
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    ev = SpecEvaluator((FIXTURES / f"{name}.mlmodel").read_bytes())
    x = np.asarray(meta["rows"], dtype=np.float64)
    return ev, meta, {f: x[:, i] for i, f in enumerate(meta["features"])}


def test_coremltools_scaler_gradient_boosting_classifier() -> None:
    ev, meta, feeds = fixture("scaler_gbc_binary")
    assert ev.spec.WhichOneof("Type") == "pipelineClassifier"
    kinds = [m.WhichOneof("Type") for m in ev.spec.pipelineClassifier.pipeline.models]
    assert kinds == ["featureVectorizer", "scaler", "treeEnsembleClassifier"]
    out = ev.run(feeds)
    assert len(feeds["a"]) >= 40
    assert out[meta["outputs"]["label"]].tolist() == meta["label"]
    proba = out[meta["outputs"]["probabilities"]]
    assert proba.keys == tuple(meta["classes"])
    np.testing.assert_allclose(proba.values, meta["probabilities"], rtol=0, atol=1e-12)


def test_coremltools_linear_regression() -> None:
    ev, meta, feeds = fixture("linear_regression")
    out = ev.run(feeds)
    np.testing.assert_allclose(out[meta["outputs"]["value"]], meta["value"], rtol=1e-12, atol=1e-12)


def test_array_feature_extractor_by_hand() -> None:
    m = model([("x", "array", 4)], [("y", "array", 2)])
    m.arrayFeatureExtractor.extractIndex.extend([3, 1])
    assert run(m, x=[[1.0, 2.0, 3.0, 4.0], [5.0, np.nan, 7.0, 8.0]])["y"].tolist()[0] == [4.0, 2.0]
    one = model([("x", "array", 4)], [("y", "double", 1)])
    one.arrayFeatureExtractor.extractIndex.append(2)
    assert run(one, x=[[1.0, 2.0, 3.0, 4.0]])["y"].tolist() == [3.0]
    one.arrayFeatureExtractor.extractIndex[0] = 4
    with pytest.raises(BundleError, match="do not fit the 4-value input"):
        SpecEvaluator(one.SerializeToString())


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly", "sigmoid"])
def test_support_vector_regressor_by_hand(kernel: str) -> None:
    """Two support vectors, values worked out from the kernel formulas of SVM.proto."""
    m = model([("x", "array", 2)], [("y", "double", 1)])
    s = m.supportVectorRegressor
    s.denseSupportVectors.vectors.add().values.extend([1.0, 0.0])
    s.denseSupportVectors.vectors.add().values.extend([0.0, 2.0])
    s.coefficients.alpha.extend([0.5, -2.0])
    s.rho = 0.25
    x = [3.0, 1.0]
    dots = [3.0, 2.0]  # x . sv_1, x . sv_2
    if kernel == "linear":
        s.kernel.linearKernel.SetInParent()
        k = dots
    elif kernel == "rbf":
        s.kernel.rbfKernel.gamma = 0.5
        k = [math.exp(-0.5 * 5.0), math.exp(-0.5 * 10.0)]  # ||x - sv||^2 = 4 + 1, 9 + 1
    elif kernel == "poly":
        s.kernel.polyKernel.gamma, s.kernel.polyKernel.c, s.kernel.polyKernel.degree = 0.5, 1.0, 3
        k = [(0.5 * d + 1.0) ** 3 for d in dots]
    else:
        s.kernel.sigmoidKernel.gamma, s.kernel.sigmoidKernel.c = 0.5, -1.0
        k = [math.tanh(0.5 * d - 1.0) for d in dots]
    want = 0.5 * k[0] - 2.0 * k[1] - 0.25
    assert run(m, x=[x])["y"].tolist() == pytest.approx([want], rel=1e-15)


# -- what the evaluator refuses ------------------------------------------------------------
def test_refuses_a_message_it_does_not_implement() -> None:
    m = model([("x", "array", 2)], [("y", "array", 2)])
    m.normalizer.normType = P.Normalizer_pb2.Normalizer.L2
    with pytest.raises(BundleError, match="model type 'normalizer' is not implemented"):
        SpecEvaluator(m.SerializeToString())


def test_refuses_the_message_inside_a_pipeline() -> None:
    top = pipeline_by_hand()
    top.pipeline.models[3].ClearField("scaler")
    top.pipeline.models[3].kNearestNeighborsClassifier.SetInParent()
    with pytest.raises(BundleError, match=r"models\[3\]: model type 'kNearestNeighborsClassifier'"):
        SpecEvaluator(top.SerializeToString())


def test_refuses_an_unknown_layer() -> None:
    m = network(2)
    layer = m.neuralNetwork.layers.add()
    layer.name = "relu"
    layer.input.append("s")
    layer.output.append("p")
    layer.activation.ReLU.SetInParent()
    with pytest.raises(BundleError, match="activation"):
        SpecEvaluator(m.SerializeToString())


@pytest.mark.parametrize("change", [
    "sparse_one_hot", "glm_logit", "imputer_without_replace", "exact_shape_mapping", "updatable",
    "three_class_glm", "softmax_zero_reference", "tree_branch_values",
])
def test_refuses_options_it_does_not_implement(change: str) -> None:
    if change == "sparse_one_hot":
        m = model([("c", "string", 1)], [("v", "array", 1)])
        m.oneHotEncoder.stringCategories.vector.append("a")
        m.oneHotEncoder.outputSparse = True
    elif change == "glm_logit":
        m = model([("x", "array", 1)], [("y", "double", 1)])
        m.glmRegressor.weights.add().value.append(1.0)
        m.glmRegressor.offset.append(0.0)
        m.glmRegressor.postEvaluationTransform = P.GLMRegressor_pb2.GLMRegressor.Logit
    elif change == "imputer_without_replace":
        m = model([("x", "double", 1)], [("y", "double", 1)])
        m.imputer.imputedDoubleValue = 1.0
    elif change == "exact_shape_mapping":
        m = clip_network()
        m.neuralNetwork.arrayInputShapeMapping = P.NeuralNetwork_pb2.EXACT_ARRAY_MAPPING
    elif change == "updatable":
        m = one_tree()
        m.isUpdatable = True
    elif change == "three_class_glm":
        m = model([("x", "array", 1)], [("label", "int64", 1)])
        m.description.predictedFeatureName = "label"
        for _ in range(3):
            m.glmClassifier.weights.add().value.append(1.0)
            m.glmClassifier.offset.append(0.0)
        m.glmClassifier.int64ClassLabels.vector.extend([1, 2, 3])
    elif change == "softmax_zero_reference":
        m = model([("x", "array", 1)], [("label", "int64", 1)])
        m.description.predictedFeatureName = "label"
        te = m.treeEnsembleClassifier
        te.int64ClassLabels.vector.extend([0, 1])
        te.treeEnsemble.numPredictionDimensions = 2
        te.treeEnsemble.basePredictionValue.extend([0.0, 0.0])
        leaf(te.treeEnsemble, 0, 0, (0, 1.0))
        te.postEvaluationTransform = P.TreeEnsemble_pb2.Classification_SoftMaxWithZeroClassReference
    else:
        m = one_tree()
        m.treeEnsembleRegressor.treeEnsemble.nodes[0].evaluationInfo.add().evaluationValue = 1.0
    with pytest.raises(BundleError, match="not implemented"):
        SpecEvaluator(m.SerializeToString())


def test_refuses_a_classifier_tie() -> None:
    """Which class wins a tie is not stated by the format: the evaluator raises rather than pick one."""
    m = model([("x", "array", 1)], [("label", "string", 1)])
    m.description.predictedFeatureName = "label"
    te = m.treeEnsembleClassifier
    te.stringClassLabels.vector.extend(["a", "b"])
    te.treeEnsemble.numPredictionDimensions = 2
    te.treeEnsemble.basePredictionValue.extend([0.0, 0.0])
    branch(te.treeEnsemble, 0, 0, TN.BranchOnValueLessThanEqual, 0, 0.0, 1, 2)
    leaf(te.treeEnsemble, 0, 1, (0, 1.0))
    leaf(te.treeEnsemble, 0, 2, (0, 0.5), (1, 0.5))
    assert run(m, x=[[-1.0]])["label"].tolist() == ["a"]
    with pytest.raises(BundleError, match="row 1 has two classes with the highest probability"):
        run(m, x=[[-1.0], [1.0]])


@pytest.mark.parametrize("damage", ["two_roots", "dangling_child", "cycle", "wrong_base_length"])
def test_refuses_malformed_trees(damage: str) -> None:
    m = one_tree()
    p = m.treeEnsembleRegressor.treeEnsemble
    if damage == "two_roots":
        leaf(p, 0, 9, (0, 1.0))
    elif damage == "dangling_child":
        p.nodes[2].falseChildNodeId = 42
    elif damage == "cycle":
        p.nodes[2].trueChildNodeId = 0
    else:
        p.basePredictionValue.append(1.0)
    with pytest.raises(BundleError, match="Core ML spec"):
        SpecEvaluator(m.SerializeToString())


def test_refuses_garbage() -> None:
    with pytest.raises(BundleError, match="does not parse"):
        SpecEvaluator(b"\xff\xfe not a protobuf")
