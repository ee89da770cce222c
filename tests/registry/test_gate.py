"""The gate's figures against scikit-learn's metrics on the runtime's own answers, for regression and anomaly
models (classification: tests/registry/test_release_e2e.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from skedge.registry import compare
from skedge.runtime import GateError, load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATA = EXAMPLES / "penguins.csv"


def _train_variant(tmp: Path, config: str, edit: dict[str, str]) -> Path:
    from skedge.trainer import train

    text = (EXAMPLES / config).read_text()
    text = text.replace('path = "penguins.csv"', f"path = {json.dumps(str(DATA))}")
    for old, new in edit.items():
        assert old in text
        text = text.replace(old, new)
    text += '\n[export]\ntargets = ["onnx"]\n'
    cfg = tmp / config
    cfg.write_text(text)
    return train(cfg, tmp / "models").path


@pytest.fixture(scope="module")
def weak_regressor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train_variant(tmp_path_factory.mktemp("reg"), "penguins_body_mass.toml", {
        'version = "1.0.0"': 'version = "1.1.0"', 'estimator = "hist_gradient_boosting"': 'estimator = "decision_tree"',
        "params = { max_iter = 200, learning_rate = 0.05 }": "params = { max_depth = 1 }",
        "r2 = 0.75": "r2 = 0.1"})


@pytest.fixture(scope="module")
def loose_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train_variant(tmp_path_factory.mktemp("anom"), "penguins_anomaly.toml", {
        'version = "1.0.0"': 'version = "1.1.0"', "contamination = 0.05": "contamination = 0.3",
        "contamination_gap = 0.1": "contamination_gap = 0.5"})


def _rows(model_path: Path) -> tuple[dict[str, list[object]], list[dict[str, str]]]:
    model = load(model_path)
    with open(DATA, newline="") as fh:
        rows = list(csv.DictReader(fh))

    def cell(text: str, kind: str) -> object:
        return None if text in ("", "NA") else (text if kind == "category" else float(text))

    return {f.name: [cell(r[f.name], f.kind) for r in rows] for f in model.schema.features}, rows


def test_regression_gate_matches_sklearn_metrics(body_mass_bundle: Path, weak_regressor: Path) -> None:
    from sklearn.metrics import mean_absolute_error, r2_score

    report = compare(load(weak_regressor), load(body_mass_bundle), DATA)
    feats, rows = _rows(body_mass_bundle)
    keep = [i for i, r in enumerate(rows) if r["body_mass_g"] not in ("", "NA")]
    y = np.array([float(rows[i]["body_mass_g"]) for i in keep])
    good = np.asarray(load(body_mass_bundle).predict({k: [v[i] for i in keep] for k, v in feats.items()}))
    weak = np.asarray(load(weak_regressor).predict({k: [v[i] for i in keep] for k, v in feats.items()}))
    m = {x.name: x for x in report.metrics}
    assert report.rows == len(keep) == len(rows) - 2  # two rows of the table have no body mass: not labelled
    assert m["r2"].current == pytest.approx(r2_score(y, good), abs=1e-12)
    assert m["r2"].candidate == pytest.approx(r2_score(y, weak), abs=1e-12)
    assert m["mae"].candidate == pytest.approx(mean_absolute_error(y, weak), abs=1e-9)
    assert m["mae"].diff == pytest.approx(mean_absolute_error(y, good) - mean_absolute_error(y, weak), abs=1e-9)
    assert report.worse_rows == int(np.sum(np.abs(weak - y) > np.abs(good - y)))
    for x in report.metrics:
        assert x.low <= x.diff <= x.high
    assert not report.passed and report.refusal is not None and report.refusal.startswith("r2 ")
    assert report.flip_rate is None
    # the other way round, the better model is not refused
    assert compare(load(body_mass_bundle), load(weak_regressor), DATA).passed
    # a rule on a metric the gate does not measure is an error, not silently ignored
    with pytest.raises(GateError, match="--max-drop names 'accuracy'"):
        compare(load(weak_regressor), load(body_mass_bundle), DATA, max_drop={"accuracy": 0.5})
    loose = compare(load(weak_regressor), load(body_mass_bundle), DATA, max_drop={"r2": 2.0})
    assert loose.passed  # an explicit rule replaces the default one


def test_anomaly_gate_is_the_rate_gap(anomaly_bundle: Path, loose_detector: Path) -> None:
    report = compare(load(loose_detector), load(anomaly_bundle), DATA)
    feats, _ = _rows(anomaly_bundle)
    gaps = {}
    for name, path in (("candidate", loose_detector), ("current", anomaly_bundle)):
        model = load(path)
        rate = float(np.mean(np.asarray(model.predict(feats)) == -1))
        gaps[name] = abs(rate - model.bundle.manifest["metrics"]["contamination_observed"])  # type: ignore[union-attr]
    (gap,) = report.metrics
    assert gap.name == "anomaly_rate_gap" and report.main == "anomaly_rate_gap"
    assert gap.candidate == pytest.approx(gaps["candidate"], abs=1e-12)
    assert gap.current == pytest.approx(gaps["current"], abs=1e-12)
    assert gap.diff == pytest.approx(gaps["current"] - gaps["candidate"], abs=1e-12)  # positive is better
    labels_c = np.asarray(load(loose_detector).predict(feats))
    labels_k = np.asarray(load(anomaly_bundle).predict(feats))
    assert report.flip_rate == pytest.approx(float(np.mean(labels_c != labels_k)))
    assert report.flip_rate > 0.1  # contamination 0.3 against 0.05 flags many more rows


def test_a_parquet_benchmark_scores_as_the_same_rows_in_csv(body_mass_bundle: Path, weak_regressor: Path,
                                                            tmp_path: Path) -> None:
    # a .parquet --data file used to be refused: "expected a finite number, got <pyarrow.lib.DoubleArray ...>"
    import pandas as pd

    frame = pd.read_csv(DATA)
    frame.to_parquet(tmp_path / "bench.parquet")
    candidate, current = load(weak_regressor), load(body_mass_bundle)
    from_csv = compare(candidate, current, DATA).to_json()
    from_parquet = compare(candidate, current, tmp_path / "bench.parquet").to_json()
    assert from_parquet.pop("data_sha256") != from_csv.pop("data_sha256")
    assert from_parquet == from_csv
