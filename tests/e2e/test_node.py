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


# -- what missing means, in JavaScript (issues 10.2, 10.3, 11.4, 11.5) -------------------------------------

def _core(node: str, expr: str) -> object:
    """Evaluate ``expr`` with skedge-core.js imported as ``m``; its JSON value."""
    code = (f"import({json.dumps((DEMO / 'skedge-core.js').as_uri())}).then((m) => "
            f"process.stdout.write(JSON.stringify({expr})))")
    proc = subprocess.run([node, "--input-type=module", "-e", code], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_js_missing_rule_is_the_python_one(node: str) -> None:
    from skedge.runtime.missing import MISSING_CATEGORY, MISSING_TEXT, category_text

    assert _core(node, "m.MISSING_TEXT") == sorted(MISSING_TEXT)
    assert _core(node, "m.MISSING_CATEGORY") == MISSING_CATEGORY
    numbers = [101, 101.0, -0.0, 2.5, 1e-05, 1.5e-07, 0.0001, 123456.789, 1e21, 2.0**53 + 2, 0.1 + 0.2, -3.25e-9]
    assert _core(node, f"{json.dumps(numbers)}.map(m.categoryText)") == [category_text(x) for x in numbers]
    # and 2,000 random doubles over every magnitude a category number may have, half of them whole
    import numpy as np

    rng = np.random.default_rng(11)
    mags = rng.choice([-1.0, 1.0], 2000) * 10.0 ** rng.uniform(-12, 22, 2000)
    mags[::2] = np.round(mags[::2])
    values = [float(v) for v in mags]
    assert _core(node, f"{json.dumps(values)}.map(m.categoryText)") == [category_text(v) for v in values]
    assert _core(node, "[null, NaN, '', ' ', 'NA'].map((v) => m.isMissing(v))") == [True, True, False, False, False]


@pytest.fixture(scope="module")
def colors_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    from skedge.exporter import export
    from tests.runtime.test_missing import _frame, _pipeline

    X, y = _frame(600, 0)
    pipe = _pipeline().fit(X, y)
    return pipe, export(pipe, X, tmp_path_factory.mktemp("colors"), name="colors", targets=["onnx"])


def test_empty_string_and_missing_in_node_answer_like_sklearn(node: str, colors_bundle: tuple[object, Path],
                                                              tmp_path: Path) -> None:
    import numpy as np

    from tests.runtime.test_missing import _sk

    pipe, bundle = colors_bundle
    rows = [{"x": 0.1, "z": -0.2, "color": c} for c in ("", " ", None, "red", "Zoë", "never", "\t", "日本語")]
    src = tmp_path / "rows.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    proc = _run(node, str(bundle), str(src))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)["outputs"]
    want = _sk(pipe, rows)  # type: ignore[arg-type]
    assert abs(want[0][1] - want[2][1]) > 0.3  # "" and missing differ in sklearn: the comparison can fail
    np.testing.assert_allclose(np.asarray(got["probabilities"]), want, rtol=0, atol=1e-9)
    assert got["label"] == list(_sk(pipe, rows, "predict"))  # type: ignore[arg-type]


def test_node_refuses_the_marker_and_answers_an_empty_batch(node: str, colors_bundle: tuple[object, Path],
                                                            tmp_path: Path) -> None:
    _, bundle = colors_bundle
    src = tmp_path / "rows.json"
    src.write_text(json.dumps([{"x": 0.1, "z": 0.0, "color": "\uffff"}]), encoding="utf-8")
    proc = _run(node, str(bundle), str(src))
    assert proc.returncode == 1
    assert proc.stderr.startswith("SchemaError: row 0, field 'color': got \"\uffff\", the value skedge feeds")
    src.write_text("[]", encoding="utf-8")
    proc = _run(node, str(bundle), str(src))
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["rows"] == 0 and answer["outputs"] == {"label": [], "probabilities": []}
