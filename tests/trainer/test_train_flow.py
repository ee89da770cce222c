"""Gates that stop a run, versions that are never overwritten, reproducible bytes, data errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skedge.runtime import BundleError, DataError, ExportError, GateError, load
from skedge.trainer import load_config, train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _config(tmp_path: Path, extra: str = "", data: Path | None = None) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(f"""
name = "gated"
seed = 1
[data]
path = "{data or EXAMPLES / 'penguins.csv'}"
target = "species"
[model]
estimator = "decision_tree"
params = {{ max_depth = 1 }}
{extra}
""")
    return p


def test_failed_gate_stops_the_run_and_writes_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "[evaluation.gates]\naccuracy = 0.99\n")
    with pytest.raises(GateError, match=r"accuracy = 0\.\d+ is below the minimum 0.99; no bundle was written"):
        train(cfg, tmp_path / "models")
    assert not (tmp_path / "models" / "gated").exists() or not any((tmp_path / "models" / "gated").iterdir())
    res = subprocess.run([sys.executable, "-m", "skedge.cli", "train", str(cfg), "--out", str(tmp_path / "m2")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "quality gate failed: accuracy" in res.stderr and "Traceback" not in res.stderr


def test_error_gate_is_a_maximum(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "[evaluation.gates]\nlog_loss = 0.01\n")
    with pytest.raises(GateError, match="log_loss = .* is above the maximum 0.01"):
        train(cfg, tmp_path / "models")


def test_existing_version_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    first = train(cfg, tmp_path / "models").path
    stamp = (first / "model.onnx").stat().st_mtime_ns
    with pytest.raises(ExportError, match="already exists: a published version is never overwritten"):
        train(cfg, tmp_path / "models")
    assert (first / "model.onnx").stat().st_mtime_ns == stamp
    assert train(cfg, tmp_path / "models", version="1.0.1").path.name == "1.0.1"
    leftovers = [p.name for p in (tmp_path / "models" / "gated").iterdir()]
    assert sorted(leftovers) == ["1.0.0", "1.0.1"]  # no temporary directories left behind


def test_tampered_bundle_is_refused(tmp_path: Path) -> None:
    path = train(_config(tmp_path), tmp_path / "models").path
    golden = path / "golden.json"
    data = bytearray(golden.read_bytes())
    i = next(i for i, c in enumerate(data) if chr(c).isdigit())
    data[i] = ord("2") if data[i] == ord("1") else ord("1")  # same size, still JSON: only the hash can tell
    golden.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"golden.json does not match its manifest \(sha256 .*\): the file was "
                                          r"changed after export"):
        load(path)


def _train_in_fresh_process(cfg: Path, out: Path, hashseed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    res = subprocess.run([sys.executable, "-m", "skedge.cli", "train", str(cfg), "--out", str(out)],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    return hashlib.sha256((out / "penguins" / "1.0.0" / "model.onnx").read_bytes()).hexdigest()


def test_training_twice_gives_identical_model_bytes(tmp_path: Path) -> None:
    cfg = EXAMPLES / "penguins.toml"
    a = _train_in_fresh_process(cfg, tmp_path / "a", "1")
    b = _train_in_fresh_process(cfg, tmp_path / "b", "2")
    assert a == b


def test_data_error_names_row_and_column(tmp_path: Path) -> None:
    df = pd.read_csv(EXAMPLES / "penguins.csv")
    df["bill_length_mm"] = df["bill_length_mm"].astype(object)
    df.loc[17, "bill_length_mm"] = "forty"
    data = tmp_path / "bad.csv"
    df.to_csv(data, index=False)
    cfg = _config(tmp_path, data=data)
    cfg.write_text(cfg.read_text().replace('target = "species"\n',
                                           'target = "species"\nkinds = { bill_length_mm = "number" }\n'))
    with pytest.raises(DataError, match=r"row 17, column 'bill_length_mm': expected a number, got 'forty'"):
        train(load_config(cfg), tmp_path / "models")


def test_missing_data_file_and_column(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        train(_config(tmp_path, data=tmp_path / "nope.csv"), tmp_path / "m")
    cfg = _config(tmp_path)
    cfg.write_text(cfg.read_text().replace('target = "species"', 'target = "specie"'))
    with pytest.raises(DataError, match="no column 'specie'"):
        train(cfg, tmp_path / "m")


def test_parquet_and_csv_give_the_same_data_fingerprint(tmp_path: Path) -> None:
    from skedge.trainer.data import load_table, prepare

    pd.read_csv(EXAMPLES / "penguins.csv").to_parquet(tmp_path / "p.parquet")
    a = prepare(load_table(EXAMPLES / "penguins.csv"), target="species", drop=[], kinds={})
    b = prepare(load_table(tmp_path / "p.parquet"), target="species", drop=[], kinds={})
    assert a.sha256 == b.sha256
    assert [f.kind for f in a.features] == [f.kind for f in b.features]
    result = train(_config(tmp_path, data=tmp_path / "p.parquet"), tmp_path / "models")
    manifest = (result.path / "manifest.json").read_text()
    assert a.sha256 in manifest


def test_the_task_is_read_from_the_target(tmp_path: Path) -> None:
    """A 0/1 column with blank cells is labels (pandas reads it as float); a many-valued count is a quantity."""
    from skedge.trainer import fit

    df = pd.read_csv(EXAMPLES / "penguins.csv")
    df["heavy"] = (df["body_mass_g"] > 4200).astype(float)
    df.loc[::17, "heavy"] = np.nan
    df["mass_int"] = df["body_mass_g"].fillna(4000).astype(int)
    data = tmp_path / "p.csv"
    df.to_csv(data, index=False)
    cfg = _config(tmp_path, data=data)
    text = cfg.read_text().replace('target = "species"', 'target = "heavy"\ndrop = ["body_mass_g", "mass_int"]')
    cfg.write_text(text)
    pipe, info = fit(load_config(cfg))
    assert info["task"] == "classification" and list(pipe.classes_) == [0, 1]
    assert info["data"]["rows_without_target"] == len(df.index[::17])
    cfg.write_text(text.replace('target = "heavy"', 'target = "mass_int"').replace('"mass_int"]', '"heavy"]')
                   .replace("decision_tree", "random_forest").replace("max_depth = 1", "n_estimators = 5"))
    _, info = fit(load_config(cfg))
    assert info["task"] == "regression"
