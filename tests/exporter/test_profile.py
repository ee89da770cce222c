"""profile.json (issue 15): what the exporter freezes for drift monitoring, checked against numpy/pandas/sklearn
computed here from the same tables, and protected like every other file of the bundle."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skedge.runtime import BundleError, load
from tests.runtime import drift_data as dd


@pytest.fixture(scope="module")
def tables() -> dict[str, Any]:
    train, holdout = dd.table(6000, seed=1), dd.table(600, seed=2)
    return {"train": train, "holdout": holdout, "pipe": dd.pipeline(train, dd.labels(train, 1))}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dd.export_bundle(tmp_path_factory.mktemp("profile"))


@pytest.fixture(scope="module")
def profile(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "profile.json").read_text())


def test_numeric_bins_are_training_quantiles(profile: dict[str, Any], tables: dict[str, Any]) -> None:
    train = tables["train"]
    for name in ("x_normal", "x_skewed", "x_gappy"):
        f = profile["features"][name]
        x = train[name].dropna().to_numpy()
        assert f["edges"] == pytest.approx(np.quantile(x, np.arange(1, 10) / 10), rel=1e-12)
        want = np.histogram(x, bins=[-np.inf, *f["edges"], np.inf])[0]
        # np.histogram's bins are half-open on the right like the profile's, except its last, closed: no value
        # sits exactly on a quantile edge of continuous data, so they count alike
        assert f["counts"] == want.tolist() and max(abs(c / len(x) - 0.1) for c in f["counts"]) < 0.002
        assert f["min"] == x.min() and f["max"] == x.max()
        assert f["missing"] == int(train[name].isna().sum()) and f["rows"] == 6000
    # a discrete feature: quantile edges that would leave a bin empty are dropped, every bin holds training rows
    count = profile["features"]["x_count"]
    assert all(c > 0 for c in count["counts"]) and sum(count["counts"]) == 6000
    assert 2 <= len(count["counts"]) <= 10


def test_category_frequencies_are_top_values_and_other(profile: dict[str, Any], tables: dict[str, Any]) -> None:
    train = tables["train"]
    wide = profile["features"]["c_wide"]
    vc = train["c_wide"].value_counts()
    top = vc.sort_values(ascending=False, kind="stable").head(20)
    assert sorted(wide["values"]) == sorted(top.index) and len(wide["values"]) == 20
    assert wide["counts"][:-1] == [int(vc[v]) for v in wide["values"]]
    assert wide["counts"][-1] == int(vc.drop(wide["values"]).sum())  # "other": the 10 rarest levels
    small = profile["features"]["c_small"]
    assert small["values"] == ["a", "b", "c", "d"] and small["counts"][-1] == 0


def test_prediction_distribution_is_sklearns_on_the_holdout(profile: dict[str, Any], tables: dict[str, Any]) -> None:
    labels = tables["pipe"].predict(tables["holdout"])
    pred = profile["prediction"]
    assert pred["values"] == ["no", "yes"]
    assert pred["counts"] == [int((labels == "no").sum()), int((labels == "yes").sum()), 0]
    assert profile["source"] == "reference" and profile["rows"] == {"reference": 6000, "holdout": 600}


def test_profile_holds_no_training_record(profile: dict[str, Any], tables: dict[str, Any]) -> None:
    shipped: dict[str, set[Any]] = {}
    for name, f in profile["features"].items():
        shipped[name] = set(f.get("edges", [])) | set(f.get("values", [])) | {f.get("min"), f.get("max")}
    train = tables["train"]
    whole = [rec for rec in train.to_dict("records")
             if all(v in shipped[k] or (isinstance(v, float) and v != v) for k, v in rec.items())]
    assert not whole
    allowed = {"format", "source", "rows", "features", "prediction"}
    assert set(profile) == allowed
    for f in [*profile["features"].values(), profile["prediction"]]:
        assert set(f) <= {"kind", "edges", "counts", "min", "max", "rows", "missing", "out_of_range", "unseen",
                          "values"}


def test_profile_is_hashed_and_a_changed_one_is_refused(bundle: Path, tmp_path: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    data = (bundle / "profile.json").read_bytes()
    assert manifest["files"]["profile.json"] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    changed = shutil.copytree(bundle, tmp_path / "changed")
    doc = json.loads(data)
    doc["features"]["x_normal"]["counts"][0] += 1
    doc["features"]["x_normal"]["counts"][1] -= 1  # same size, other counts
    (changed / "profile.json").write_text(json.dumps(doc, sort_keys=True, allow_nan=False) + "\n")
    with pytest.raises(BundleError, match="profile.json does not match its manifest"):
        load(changed)


def test_signed_bundles_cover_the_profile(bundle: Path, tmp_path: Path) -> None:
    from skedge.runtime.signing import generate_keypair, read_signed, sign_bundle

    key, pub = generate_keypair(tmp_path / "keys")
    signed = shutil.copytree(bundle, tmp_path / "signed")
    sign_bundle(signed, key)
    env = json.loads((signed / "signature.json").read_text())
    import base64

    subjects = {s["name"] for s in json.loads(base64.b64decode(env["payload"]))["subject"]}
    assert "profile.json" in subjects
    read_signed(signed, pub)  # whole
    (signed / "profile.json").write_bytes((signed / "profile.json").read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(BundleError, match="profile.json"):
        read_signed(signed, pub)


def test_without_a_reference_the_sample_is_the_profile(tmp_path: Path, tables: dict[str, Any]) -> None:
    from skedge.exporter.profile import build_profile, profile_bytes

    model = load(dd.export_bundle(tmp_path, reference=False, n_train=2000, name="noref"))
    doc = json.loads((model.bundle.path / "profile.json").read_text())  # type: ignore[union-attr]
    assert doc["source"] == "sample" and doc["rows"] == {"reference": 600, "holdout": 600}
    holdout = dd.table(600, seed=2)
    assert doc["features"]["x_normal"]["edges"] == pytest.approx(
        np.quantile(holdout["x_normal"], np.arange(1, 10) / 10), rel=1e-12)
    # the same inputs give the same bytes (bundles are reproducible)
    pipe = dd.pipeline(dd.table(2000, seed=1), dd.labels(dd.table(2000, seed=1), 1))
    a = profile_bytes(build_profile(pipe, model.schema, holdout))
    assert a == profile_bytes(build_profile(pipe, model.schema, holdout.copy()))
    with model.monitor(window=100):
        pass


def test_regression_profile_watches_the_predicted_values(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from skedge.exporter import export

    train = dd.table(1500, seed=3)[["x_normal", "x_skewed"]]
    y = 2 * train["x_normal"] + 0.1 * train["x_skewed"]
    pipe = LinearRegression().fit(train, y)
    holdout = dd.table(400, seed=4)[["x_normal", "x_skewed"]]
    path = export(pipe, holdout, tmp_path, name="reg", targets=["onnx"], reference=train)
    pred = json.loads((path / "profile.json").read_text())["prediction"]
    values = pipe.predict(holdout)
    assert pred["kind"] == "numeric" and pred["min"] == pytest.approx(values.min())
    assert pred["edges"] == pytest.approx(np.quantile(values, np.arange(1, 10) / 10), rel=1e-9)
    model = load(path)
    new = dd.table(300, seed=5)[["x_normal", "x_skewed"]]
    with model.monitor(window=300) as mon:
        model.predict(new)
        got = mon.summary()["counts"]["prediction"]["bins"]
        assert not mon.report()["prediction"]["drift"]
    want = np.histogram(pipe.predict(new), bins=[-np.inf, *pred["edges"], np.inf])[0]
    assert got == want.tolist()


def test_the_trainer_profiles_its_training_rows(penguins_bundle: Path) -> None:
    doc = json.loads((penguins_bundle / "profile.json").read_text())
    manifest = json.loads((penguins_bundle / "manifest.json").read_text())
    data = manifest["provenance"]["data"]
    assert doc["source"] == "reference"
    assert doc["rows"] == {"reference": data["train_rows"], "holdout": data["holdout_rows"]}
    assert "profile.json" in manifest["files"]
    frame = pd.read_csv(Path(__file__).resolve().parents[2] / "examples" / "penguins.csv")
    assert set(doc["features"]["island"]["values"]) == set(frame["island"].dropna())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["features"]["x_normal"]["edges"].reverse(), "increasing edges"),
    (lambda d: d["features"].pop("c_small"), "no entry for feature 'c_small'"),
    (lambda d: d["prediction"]["counts"].append(-1), "whole number"),
    (lambda d: d.update(format=99), "format 99"),
])
def test_a_consistently_rewritten_bad_profile_is_refused(bundle: Path, tmp_path: Path, edit: Any,
                                                         message: str) -> None:
    bad = shutil.copytree(bundle, tmp_path / "bad")
    doc = json.loads((bad / "profile.json").read_text())
    edit(doc)
    (bad / "profile.json").write_text(json.dumps(doc))
    manifest = json.loads((bad / "manifest.json").read_text())
    data = (bad / "profile.json").read_bytes()
    manifest["files"]["profile.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (bad / "manifest.json").write_text(json.dumps(manifest))
    model = load(bad)  # the hashes agree: only reading the profile can tell
    with pytest.raises(BundleError, match=message):
        model.monitor(window=10)


def test_anomaly_profile_watches_the_labels(tmp_path: Path) -> None:
    from sklearn.ensemble import IsolationForest

    from skedge.exporter import export

    train = dd.table(800, seed=6)[["x_normal", "x_skewed"]]
    pipe = IsolationForest(n_estimators=10, random_state=0).fit(train)
    holdout = dd.table(300, seed=7)[["x_normal", "x_skewed"]]
    path = export(pipe, holdout, tmp_path, name="odd", targets=["onnx"], reference=train)
    pred = json.loads((path / "profile.json").read_text())["prediction"]
    labels = pipe.predict(holdout)
    assert pred["values"] == [-1, 1] and pred["counts"] == [int((labels == -1).sum()), int((labels == 1).sum()), 0]
    model = load(path)
    new = dd.table(100, seed=8)[["x_normal", "x_skewed"]]
    with model.monitor(window=100) as mon:
        model.decision_function(new)  # the labels are counted even when only scores were asked for
        got = mon.summary()["counts"]["prediction"]["bins"]
    want = pipe.predict(new)
    assert got == [int((want == -1).sum()), int((want == 1).sum()), 0]


def test_cli_export_takes_a_reference_table(tmp_path: Path, tables: dict[str, Any]) -> None:
    import skops.io

    from skedge.cli import main

    skops.io.dump(tables["pipe"], tmp_path / "pipe.skops")
    tables["train"].head(3000).to_csv(tmp_path / "train.csv", index=False)
    tables["holdout"].to_csv(tmp_path / "holdout.csv", index=False)
    assert main(["export", str(tmp_path / "pipe.skops"), "--sample", str(tmp_path / "holdout.csv"), "--reference",
                 str(tmp_path / "train.csv"), "--name", "cli", "--out", str(tmp_path / "models")]) == 0
    doc = json.loads((tmp_path / "models" / "cli" / "1.0.0" / "profile.json").read_text())
    assert doc["source"] == "reference" and doc["rows"] == {"reference": 3000, "holdout": 600}
    assert doc["features"]["c_wide"]["counts"][0] == int((tables["train"].head(3000)["c_wide"] == "w00").sum())
