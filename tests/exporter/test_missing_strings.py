"""Issue 11.4 in the Core ML target: "" is a category sklearn answers, missing is the marker, in the converter
(exporter/coreml/preprocessing.py) and through the reference evaluator, against sklearn's own answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.runtime.test_missing import _frame, _pipeline, _sk


@pytest.fixture(scope="module")
def colors(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    from skedge.exporter import export

    X, y = _frame(600, 0)
    pipe = _pipeline().fit(X, y)
    return pipe, export(pipe, X, tmp_path_factory.mktemp("colors"), name="colors", targets=["onnx", "coreml"])


def test_core_ml_answers_empty_string_and_missing_like_sklearn(colors: tuple[Any, Path]) -> None:
    from skedge.exporter.coreml import load_coreml

    pipe, bundle = colors
    model = load_coreml(bundle, backend="evaluator")
    assert model.schema.missing_category == "\uffff"
    rows = [{"x": 0.1, "z": -0.2, "color": c} for c in ("", " ", None, "red", "Zoë", "never", "\t", "日本語")]
    want = _sk(pipe, rows)
    assert abs(want[0][1] - want[2][1]) > 0.3  # "" and missing differ in sklearn: the comparison can fail
    np.testing.assert_allclose(model.predict_proba(rows), want, rtol=0, atol=1e-9)
    assert list(model.predict(rows)) == list(_sk(pipe, rows, "predict"))


def test_the_core_ml_spec_holds_the_marker_and_the_empty_string(colors: tuple[Any, Path]) -> None:
    from skedge.exporter.coreml.evaluator import SpecEvaluator

    _, bundle = colors
    spec = SpecEvaluator((bundle / "model.mlmodel").read_bytes()).spec
    found: dict[str, list[str]] = {"imputer": [], "onehot": []}

    def walk(m: Any) -> None:
        kind = m.WhichOneof("Type")
        if kind in ("pipeline", "pipelineClassifier", "pipelineRegressor"):
            for sub in getattr(m, kind).pipeline.models if kind != "pipeline" else m.pipeline.models:
                walk(sub)
        elif kind == "imputer" and m.imputer.WhichOneof("ReplaceValue") == "replaceStringValue":
            found["imputer"].append(m.imputer.replaceStringValue)
        elif kind == "oneHotEncoder":
            found["onehot"].extend(m.oneHotEncoder.stringCategories.vector)

    walk(spec)
    assert found["imputer"] == ["\uffff"]  # the imputer replaces the marker, never ""
    assert "" in found["onehot"] and " " in found["onehot"]  # "" and " " are categories sklearn learned
