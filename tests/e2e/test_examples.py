"""Each example config: train, export, verify, predict through the runtime and the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skedge.exporter.verify import verify_bundle
from skedge.runtime import load

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = ["penguins_bundle", "body_mass_bundle", "anomaly_bundle"]


@pytest.mark.parametrize("fixture", BUNDLES)
def test_bundle_verifies(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    bundle: Path = request.getfixturevalue(fixture)
    for name in ("model.onnx", "model.ort", "required_operators.config", "golden.json", "manifest.json", "card.md"):
        assert (bundle / name).is_file(), name
    rows = verify_bundle(bundle, report_dir=tmp_path / "verify")
    targets = {r.target for r in rows}
    assert {"onnx", "ort"} <= targets
    for r in rows:
        assert r.passed, r
        assert r.label_mismatches == 0
        if r.label_agreement is not None:
            assert r.label_agreement == 1.0
        assert r.max_rel_diff <= 1e-5
    assert (tmp_path / "verify" / "parity.md").is_file()  # the report goes where it is asked to go...
    assert (tmp_path / "verify" / "parity.png").stat().st_size > 1000
    assert not (bundle / "report" / "verify").exists()  # ...never into the bundle
    card = (bundle / "card.md").read_text()
    assert "## Parity with scikit-learn" in card
    assert "report/" in card  # plots are linked


def test_penguins_accuracy_and_predictions(penguins_bundle: Path) -> None:
    manifest = json.loads((penguins_bundle / "manifest.json").read_text())
    assert manifest["metrics"]["accuracy"] >= 0.95
    assert manifest["gates"] == {"accuracy": {"min": 0.95}, "balanced_accuracy": {"min": 0.9},
                                 "accuracy_gain_over_dummy": {"min": 0.3}}
    model = load(penguins_bundle)
    assert model.classes == ("Adelie", "Chinstrap", "Gentoo")
    gentoo = {"island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 15.0, "flipper_length_mm": 217.0,
              "body_mass_g": 5200.0, "sex": "male", "year": 2008}
    adelie = {"island": "Torgersen", "bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181.0,
              "body_mass_g": 3750.0, "sex": None, "year": 2007}
    assert model.predict(gentoo) == "Gentoo"
    assert model.predict(adelie) == "Adelie"
    proba = model.predict_proba([gentoo, adelie])
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert proba[0, 2] > 0.5 and proba[1, 0] > 0.5


def test_regression_and_anomaly_predict(body_mass_bundle: Path, anomaly_bundle: Path) -> None:
    reg = load(body_mass_bundle)
    row = {"species": "Gentoo", "island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 15.0,
           "flipper_length_mm": 217.0, "sex": "male", "year": 2008}
    mass = reg.predict(row)
    assert isinstance(mass, float) and 4500 < mass < 6500
    assert json.loads((body_mass_bundle / "manifest.json").read_text())["metrics"]["r2"] >= 0.75
    anomaly = load(anomaly_bundle)
    normal = {"species": "Adelie", "island": "Torgersen", "bill_length_mm": 39.1, "bill_depth_mm": 18.7,
              "flipper_length_mm": 181.0, "body_mass_g": 3750.0, "sex": "male"}
    odd = {**normal, "bill_length_mm": 90.0, "flipper_length_mm": 100.0, "body_mass_g": 9000.0}
    assert anomaly.predict(normal) == 1
    assert anomaly.predict(odd) == -1
    assert anomaly.decision_function(odd) < 0 < anomaly.decision_function(normal)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skedge.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_predict_csv_and_jsonl(penguins_bundle: Path, tmp_path: Path) -> None:
    data = pd.read_csv(ROOT / "examples" / "penguins.csv").head(25)
    data.insert(0, "id", range(100, 125))
    data.to_csv(tmp_path / "rows.csv", index=False)
    with open(tmp_path / "rows.jsonl", "w") as fh:
        for rec in data.to_dict(orient="records"):
            fh.write(json.dumps({k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}) + "\n")
    out_csv = _cli("predict", str(penguins_bundle), "--input", str(tmp_path / "rows.csv"), "--keep", "id")
    assert out_csv.returncode == 0, out_csv.stderr
    got = list(csv.DictReader(out_csv.stdout.splitlines()))
    assert [int(r["id"]) for r in got] == list(range(100, 125))
    assert set(got[0]) == {"id", "prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"}
    model = load(penguins_bundle)
    feats = data[model.schema.names]
    expected = model.predict(feats)
    assert [r["prediction"] for r in got] == list(expected)
    out_file = tmp_path / "pred.jsonl"
    out_jsonl = _cli("predict", str(penguins_bundle), "--input", str(tmp_path / "rows.jsonl"),
                     "--output", str(out_file))
    assert out_jsonl.returncode == 0, out_jsonl.stderr
    lines = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert [x["prediction"] for x in lines] == list(expected)


def test_cli_predict_bad_cell_is_one_line(penguins_bundle: Path, tmp_path: Path) -> None:
    data = pd.read_csv(ROOT / "examples" / "penguins.csv").head(5)
    data["bill_length_mm"] = data["bill_length_mm"].astype(object)
    data.loc[3, "bill_length_mm"] = "n/a?"
    data.to_csv(tmp_path / "bad.csv", index=False)
    res = _cli("predict", str(penguins_bundle), "--input", str(tmp_path / "bad.csv"))
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert "row 3, field 'bill_length_mm': expected a number, got 'n/a?' (str)" in res.stderr


def test_cli_verify_and_inspect(penguins_bundle: Path) -> None:
    res = _cli("verify", str(penguins_bundle))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "onnx" in res.stdout and "ort" in res.stdout and "pass" in res.stdout
    res = _cli("inspect", str(penguins_bundle))
    assert res.returncode == 0, res.stderr
    for text in ("penguins 1.0.0", "bill_length_mm", "accuracy", "data sha256", "parity"):
        assert text in res.stdout


def test_every_command_has_help_with_an_example() -> None:
    from skedge.cli import COMMANDS

    for name in COMMANDS:
        res = _cli(name, "--help")
        if res.returncode != 0 and "invalid choice" in res.stderr:
            continue  # a command that is not part of this build
        assert res.returncode == 0, (name, res.stderr)
        assert "example:" in res.stdout, name
