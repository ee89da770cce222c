"""``model.explain(rows)`` on trained bundles: the runtime side of explanations (numpy + onnxruntime only).

The contributions themselves are checked against a Python reference from the sklearn model, family by family,
in tests/exporter/test_explain.py; here: the bundle carries explain.onnx like every file (hashed), the
explanation answers what the model answers, the model that is not explained says so in one line, the card and
the command line show them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from skedge.runtime import BundleError, Explanation, load


def _golden_rows(bundle: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((bundle / "golden.json").read_text())["rows"]
    return rows


def test_classifier_explanation_adds_up_to_the_probabilities_the_model_gives(penguins_bundle: Path) -> None:
    model = load(penguins_bundle)
    rows = _golden_rows(penguins_bundle)
    ex = model.explain(rows)
    assert isinstance(ex, Explanation)
    n, f, k = len(rows), len(model.schema.names), len(model.classes or ())
    assert ex.features == tuple(model.schema.names) and ex.classes == model.classes
    assert ex.contributions.shape == (n, f, k) and ex.bias.shape == (k,) and ex.output.shape == (n, k)
    # what is explained is what predict_proba answers, and the parts add up to it
    assert np.max(np.abs(ex.output - model.predict_proba(rows))) <= 1e-12
    assert np.max(np.abs(ex.bias + ex.contributions.sum(axis=1) - ex.output)) <= 1e-6
    # a forest's bias is the training class balance: probabilities summing to 1, as every row's do
    assert abs(ex.bias.sum() - 1.0) <= 1e-9 and np.allclose(ex.contributions.sum(axis=(1, 2)), 0.0, atol=1e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ex.bias = np.zeros(k)  # type: ignore[misc]
    top = ex.ranked(0)
    assert len(top) == f and abs(top[0][1]) >= abs(top[-1][1])
    # one row and an empty batch
    one = model.explain(rows[0])
    assert np.allclose(one.contributions[0], ex.contributions[0], atol=1e-12)
    assert model.explain([]).contributions.shape == (0, f, k)


def test_regressor_explanation_adds_up_to_the_value(body_mass_bundle: Path) -> None:
    model = load(body_mass_bundle)
    rows = _golden_rows(body_mass_bundle)
    ex = model.explain(rows)
    assert ex.contributions.shape == (len(rows), len(model.schema.names)) and ex.bias.shape == ()
    assert ex.classes is None
    assert np.max(np.abs(ex.output - model.predict(rows))) <= 1e-9
    assert np.max(np.abs(ex.bias + ex.contributions.sum(axis=1) - ex.output)) <= 1e-6


def test_a_model_that_is_not_explained_says_which_family_in_one_line(anomaly_bundle: Path) -> None:
    model = load(anomaly_bundle)
    with pytest.raises(BundleError) as err:
        model.explain(_golden_rows(anomaly_bundle)[:1])
    text = str(err.value)
    assert "IsolationForest is not explained" in text and "\n" not in text
    assert "explain.onnx" not in json.loads((anomaly_bundle / "manifest.json").read_text())["files"]


def test_explain_onnx_is_a_bundle_file_like_any_other(penguins_bundle: Path, tmp_path: Path) -> None:
    manifest = json.loads((penguins_bundle / "manifest.json").read_text())
    assert "explain.onnx" in manifest["files"] and manifest["explain"]["available"] is True
    # model.onnx stays the prediction graph alone: predicting never computes a contribution
    outputs = [o.name for o in onnx.load(str(penguins_bundle / "model.onnx")).graph.output]
    assert outputs == ["label", "probabilities"]
    copy = tmp_path / "b"
    shutil.copytree(penguins_bundle, copy)
    data = bytearray((copy / "explain.onnx").read_bytes())
    data[-10] ^= 0x01
    (copy / "explain.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="explain.onnx does not match its manifest"):
        load(copy).explain(_golden_rows(copy)[:1])  # load checks it as every file; explain refuses it too


def test_card_shows_the_importances(penguins_bundle: Path) -> None:
    manifest = json.loads((penguins_bundle / "manifest.json").read_text())
    imp = manifest["explain"]["importances"]
    model = load(penguins_bundle)
    assert set(imp) == set(model.schema.names)
    assert all(v >= 0 for v in imp.values()) and max(imp.values()) > 0.01
    card = (penguins_bundle / "card.md").read_text()
    assert "## Importances" in card and "![importances](report/importances.png)" in card
    table = [ln for ln in card.split("## Importances")[1].splitlines() if ln.startswith("| `")]
    shown = [ln.split("`")[1] for ln in table]
    assert shown == sorted(imp, key=lambda k: -imp[k])  # largest first
    assert (penguins_bundle / "report" / "importances.png").read_bytes().startswith(b"\x89PNG")


def test_cli_prints_each_rows_contributions(penguins_bundle: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    model = load(penguins_bundle)
    rows = [r for r in _golden_rows(penguins_bundle) if all(v is not None for v in r.values())][:3]
    names = list(model.schema.names)
    csv = tmp_path / "rows.csv"
    csv.write_text(",".join(names) + "\n" + "".join(",".join(str(r[n]) for n in names) + "\n" for r in rows))
    assert main(["explain", str(penguins_bundle), "--input", str(csv), "--json"]) == 0
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    ex = model.explain(rows)
    assert [ln["row"] for ln in lines] == [0, 1, 2]
    assert np.allclose([ln["contributions"] for ln in lines], ex.contributions, rtol=0, atol=1e-12)
    assert main(["explain", str(penguins_bundle), "--input", str(csv), "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    k = int(np.argmax(ex.output[0]))
    (f1, v1), (f2, v2) = ex.ranked(0)[:2]
    assert out[0] == (f"row 0: p({model.classes[k]}) = {ex.output[0, k]:.4f} = bias {ex.bias[k]:.4f} | "  # type: ignore[index]
                      f"{f1} {v1:+.4g}, {f2} {v2:+.4g}")
    assert "mean |contribution| over 3 rows" in "\n".join(out)
    assert main(["explain", str(penguins_bundle), "--input", str(csv), "--class", "Emperor"]) != 0
    assert "not a class of this model" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--top", "--rows"])
@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_cli_refuses_a_count_below_one(penguins_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       flag: str, value: str) -> None:
    # --top -3 used to slice the ranking to nothing: rows printed with no contribution and exit 0
    from skedge.cli import main

    csv = tmp_path / "rows.csv"
    csv.write_text("x\n1\n")
    with pytest.raises(SystemExit) as stop:
        main(["explain", str(penguins_bundle), "--input", str(csv), flag, value])
    assert stop.value.code == 2
    assert "not a whole number of at least 1" in capsys.readouterr().err


def test_cli_names_the_file_and_row_of_a_refused_row(penguins_bundle: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # the refusal used to be "row 1, field ..." with no file, unlike `skedge predict` on the same file
    from skedge.cli import main

    rows = [r for r in _golden_rows(penguins_bundle) if all(v is not None for v in r.values())][:2]
    rows[1]["body_mass_g"] = 1e308  # past float32: the runtime refuses it
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["explain", str(penguins_bundle), "--input", str(path)]) == 1
    assert capsys.readouterr().err.strip().startswith(f"error: {path}: row 1, field 'body_mass_g'")


def test_cli_refuses_a_class_for_a_regressor(body_mass_bundle: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # --class was ignored without a word for a model that has no classes
    from skedge.cli import main

    rows = [r for r in _golden_rows(body_mass_bundle) if all(v is not None for v in r.values())][:1]
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n")
    assert main(["explain", str(body_mass_bundle), "--input", str(path), "--class", "Adelie"]) == 1
    assert "this model has no classes" in capsys.readouterr().err


def test_cli_explains_a_parquet_file_as_the_same_rows_in_csv(penguins_bundle: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # every .parquet input used to be refused: "expected a finite number, got <pyarrow.lib.DoubleArray ...>"
    import pandas as pd

    from skedge.cli import main

    model = load(penguins_bundle)
    rows = _golden_rows(penguins_bundle)[:6]  # with missing values among them
    frame = pd.DataFrame(rows, columns=list(model.schema.names))
    frame.to_parquet(tmp_path / "rows.parquet")
    assert main(["explain", str(penguins_bundle), "--input", str(tmp_path / "rows.parquet"), "--json"]) == 0
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    ex = model.explain(rows)
    assert len(lines) == len(rows)
    np.testing.assert_allclose([ln["contributions"] for ln in lines], ex.contributions, rtol=0, atol=1e-12)
