"""The same model.onnx in Node.js (onnxruntime-node) through the page's own input rules, against sklearn."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from skedge.runtime._parity import compare_outputs

DEMO = Path(__file__).resolve().parents[2] / "mobile_demo"

SCRIPT = DEMO / "node" / "predict.mjs"


def _run(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("bundle_fixture", ["penguins_bundle", "body_mass_bundle", "anomaly_bundle"])
def test_golden_vectors_in_node_answer_like_sklearn(bundle_fixture: str, request: pytest.FixtureRequest,
                                                    node: str, artifacts: Path) -> None:
    bundle: Path = request.getfixturevalue(bundle_fixture)
    golden = json.loads((bundle / "golden.json").read_text(encoding="utf-8"))
    proc = _run(node, str(bundle))
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["target"] == "node" and answer["rows"] == len(golden["rows"])
    row = compare_outputs("node", answer["outputs"], golden["expected"], golden.get("tolerance"))
    (artifacts / f"parity-node-{bundle.parent.name}.json").write_text(json.dumps(row.to_json(), indent=2) + "\n",
                                                                      encoding="utf-8")
    assert row.rows == len(golden["rows"])
    assert row.passed, row
    if "label" in golden["expected"]:
        assert row.label_agreement == 1.0


def test_node_refuses_a_bad_row_like_python(node: str, penguins_bundle: Path, tmp_path: Path) -> None:
    golden = json.loads((penguins_bundle / "golden.json").read_text(encoding="utf-8"))
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([golden["rows"][0], {**golden["rows"][0], "year": 2008.5}]), encoding="utf-8")
    proc = _run(node, str(penguins_bundle), str(rows))
    assert proc.returncode == 1
    assert proc.stderr.strip() == "SchemaError: row 1, field 'year': expected a whole number, got 2008.5 (number)"


def test_node_refuses_a_tampered_model(node: str, penguins_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    copy.mkdir()
    for f in ("manifest.json", "golden.json", "model.onnx"):
        (copy / f).write_bytes((penguins_bundle / f).read_bytes())
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(data))
    proc = _run(node, str(copy))
    assert proc.returncode == 1
    assert "does not match its manifest" in proc.stderr


def test_bool_labels_stay_booleans_in_node(node: str, tmp_path: Path) -> None:
    """onnxruntime hands a bool tensor to JavaScript as bytes; the labels must still be true/false."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from skedge.exporter import export

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=200)})
    bundle = export(LogisticRegression().fit(X, X["x"] > 0.3), X, tmp_path, name="bools")
    proc = _run(node, str(bundle))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)["outputs"]["label"]
    golden = json.loads((bundle / "golden.json").read_text(encoding="utf-8"))
    assert set(got) == {False, True}
    assert got == golden["expected"]["label"]
