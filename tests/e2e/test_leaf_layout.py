"""The leaf-number layout of large forests (exporter/onnx/trees.py ``_leaf_sum``) in every engine an app embeds:
ORT format, onnxruntime-node and onnxruntime-web answer the golden rows (threshold sweep included) with the
same bits as sklearn."""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

import skedge.exporter.onnx.trees as onnx_trees
from skedge.exporter import export
from skedge.runtime import load
from skedge.runtime._parity import compare_outputs

DEMO = Path(__file__).resolve().parents[2] / "mobile_demo"


@pytest.fixture(scope="module")
def leaf_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame({f"x{j}": rng.normal(0, 1 + j, 1000) for j in range(4)})
    X.loc[rng.random(1000) < 0.05, "x1"] = np.nan
    y = np.array(["lo", "mid", "hi"])[np.digitize(X.x0 + 0.2 * X.x2 + rng.normal(0, 1, 1000), [-0.5, 0.5])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rf = RandomForestClassifier(n_estimators=12, min_samples_leaf=2, random_state=0).fit(X, y)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(onnx_trees, "GROUP_NODES", 512)  # several groups from a forest quick to export
        # the ort target goes through the exporter's own parity sweep: a different answer is a ParityError
        path: Path = export(rf, X.sample(200, random_state=1), tmp_path_factory.mktemp("leaf"), name="leaf",
                            targets=("onnx", "ort"))
    ops = [n.op_type for n in onnx.load(path / "model.onnx").graph.node]
    assert ops.count("TreeEnsembleRegressor") > 1 and "CumSum" in ops
    return path


def _golden(bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle / "golden.json").read_text(encoding="utf-8"))
    return data


def _exact(target: str, outputs: dict[str, Any], golden: dict[str, Any]) -> None:
    row = compare_outputs(target, outputs, golden["expected"], golden.get("tolerance"))
    assert row.passed and row.label_agreement == 1.0, row
    assert row.max_abs_diff == 0.0, row  # the same bits as sklearn, not merely close


def test_ort_format_answers_like_onnx(leaf_bundle: Path) -> None:
    rows = _golden(leaf_bundle)["rows"]
    a = load(leaf_bundle).predict_proba(rows)
    b = load(leaf_bundle, target="ort").predict_proba(rows)
    assert np.array_equal(a.view(np.uint64), b.view(np.uint64))
    _exact("ort", load(leaf_bundle, target="ort").predict_outputs(rows), _golden(leaf_bundle))


def test_node_answers_like_sklearn(leaf_bundle: Path, node: str) -> None:
    proc = subprocess.run([node, str(DEMO / "node" / "predict.mjs"), str(leaf_bundle)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    _exact("node", json.loads(proc.stdout)["outputs"], _golden(leaf_bundle))


def test_browser_answers_like_sklearn(leaf_bundle: Path, web_ready: None) -> None:
    from skedge.exporter.web import demo_page, predict_in_page

    golden = _golden(leaf_bundle)
    with demo_page(leaf_bundle) as page:
        _exact("web", predict_in_page(page, golden["rows"]), golden)
