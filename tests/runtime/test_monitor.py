"""Drift on the device (issue 15): ``model.monitor(window=N)`` counts against the bundle's profile.json.

The reference for every check is independent of the monitor's code: fresh draws from a known generating
distribution (tests/runtime/drift_data.py), bin counts recomputed here with numpy from the profile's edges,
scipy's binomial quantile.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skedge.runtime import BundleError, Model, add_summaries, load
from skedge.runtime.monitor import QUANTILE, binomial_quantile, drift_report

from . import drift_data as dd

WINDOW = 200


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dd.export_bundle(tmp_path_factory.mktemp("drift"))


@pytest.fixture()
def model(bundle: Path) -> Model:
    return load(bundle)


def _reports(model: Model, seeds: range, shift: str | None = None) -> list[dict[str, dict[str, Any]]]:
    """One report per fresh window of WINDOW rows (the ring then holds exactly that window)."""
    out = []
    with model.monitor(window=WINDOW) as mon:
        for s in seeds:
            model.predict(dd.table(WINDOW, seed=1000 + s, shift=shift))
            out.append(mon.report())
    return out


def test_rows_from_the_training_distribution_stay_under_the_thresholds(model: Model) -> None:
    reports = _reports(model, range(300))
    keys = [*dd.NUMERIC, *dd.CATEGORY, "prediction"]
    assert set(reports[0]) == set(keys)
    per_key = {k: float(np.mean([r[k]["drift"] for r in reports])) for k in keys}
    # the calibrated quantile allows 0.5 % per statistic; a key alarms when any of its six does
    assert max(per_key.values()) <= 0.02, per_key
    for stat in ("psi", "js", "linf"):
        rate = np.mean([stat in r[k]["drifted"] for r in reports for k in keys])
        assert rate <= 1 - QUANTILE + 0.005, (stat, rate)
    # a fixed PSI threshold of 0.1 would call the 30-level column drifted in most windows of 200 rows
    assert np.mean([r["c_wide"]["psi"] > 0.1 for r in reports]) > 0.5
    assert all(r["c_wide"]["threshold"]["psi"] > 0.1 for r in reports)


@pytest.mark.parametrize("shifted", ["x_normal", "c_small"])
def test_one_shifted_feature_exceeds_for_that_feature_alone(model: Model, shifted: str) -> None:
    reports = _reports(model, range(40), shift=shifted)
    assert np.mean([r[shifted]["drift"] for r in reports]) >= 0.95
    others = [k for k in (*dd.NUMERIC, *dd.CATEGORY) if k != shifted]
    assert np.mean([r[k]["drift"] for r in reports for k in others]) <= 0.02
    r = reports[0][shifted]
    assert set(r) >= {"psi", "js", "linf", "out_of_range", "unseen", "missing", "threshold", "drift"}
    assert set(r["threshold"]) == {"psi", "js", "linf", "out_of_range", "unseen", "missing"}


def test_rates_missing_unseen_out_of_range(model: Model, bundle: Path) -> None:
    profile = json.loads((bundle / "profile.json").read_text())
    hi = profile["features"]["x_normal"]["max"]
    rows = dd.rows(dd.table(300, seed=77))
    with model.monitor(window=300) as mon:
        model.predict([dict(r, x_normal=hi + 1.0) if i == 0 else r for i, r in enumerate(rows)])
        one = mon.report()["x_normal"]
    # one value outside the training range in 300 rows is not drift
    assert one["out_of_range"] == pytest.approx(1 / 300) and "out_of_range" not in one["drifted"]
    with model.monitor(window=300) as mon:
        model.predict([dict(r, x_normal=hi + 1.0, c_wide="never-seen", x_skewed=None) if i % 10 == 0 else r
                       for i, r in enumerate(rows)])
        rep = mon.report()
    assert rep["x_normal"]["out_of_range"] == pytest.approx(0.1) and "out_of_range" in rep["x_normal"]["drifted"]
    assert rep["c_wide"]["unseen"] == pytest.approx(0.1) and "unseen" in rep["c_wide"]["drifted"]
    assert rep["x_skewed"]["missing"] == pytest.approx(0.1) and "missing" in rep["x_skewed"]["drifted"]
    # x_gappy is missing in 5 % of training rows: its own rate is no drift
    assert "missing" not in rep["x_gappy"]["drifted"]


def test_counts_are_the_profile_bins_and_the_window_is_the_last_rows(model: Model, bundle: Path) -> None:
    profile = json.loads((bundle / "profile.json").read_text())
    edges = np.asarray(profile["features"]["x_skewed"]["edges"])
    old = dd.table(1000, seed=5, shift="x_normal")
    new = dd.table(200, seed=6)
    with model.monitor(window=200, blocks=10) as mon:
        model.predict(old)  # one batch spanning many blocks
        for r in dd.rows(new):  # then one row at a time (the fast path)
            model.predict(r)
        rep, summary = mon.report(), mon.summary()
    assert rep["x_normal"]["rows"] == 200 and not rep["x_normal"]["drift"]  # the shifted rows rolled out
    want = np.bincount(np.digitize(new["x_skewed"].to_numpy(), edges), minlength=len(edges) + 1)
    both = np.concatenate([old["x_skewed"].to_numpy(), new["x_skewed"].to_numpy()])
    assert summary["rows"] == 1200
    assert summary["counts"]["x_skewed"]["bins"] == np.bincount(np.digitize(both, edges),
                                                                minlength=len(edges) + 1).tolist()
    # the window's own counts, read back through a summary of exactly those rows
    with model.monitor(window=200) as only_new:
        model.predict(new)
        assert only_new.summary()["counts"]["x_skewed"]["bins"] == want.tolist()
        assert only_new.report() == rep
    cats = np.concatenate([old["c_small"], new["c_small"]])
    assert summary["counts"]["c_small"]["bins"] == [int((cats == v).sum()) for v in dd.SMALL] + [0]
    labels = model.predict(new)  # not monitored any more: the window above saw these answers
    assert only_new.summary()["counts"]["prediction"]["bins"] == [int((labels == "no").sum()),
                                                                  int((labels == "yes").sum()), 0]


def test_summaries_of_two_monitors_add_up_to_one_that_saw_both(bundle: Path) -> None:
    a, b, both = load(bundle), load(bundle), load(bundle)
    s1, s2 = dd.table(450, seed=11), dd.table(333, seed=12, shift="c_small")
    ma, mb, mboth = a.monitor(window=100), b.monitor(window=100), both.monitor(window=100)
    a.predict(s1)
    for r in dd.rows(s2)[:50]:
        b.predict(r)
    b.predict(s2.iloc[50:])
    both.predict(s1)
    both.predict(s2)
    added = add_summaries(ma.summary(), mb.summary())
    assert added == mboth.summary()
    assert added["rows"] == 783
    assert json.loads(json.dumps(added)) == added  # plain JSON: what a device sends
    # the sum reads as one report over every row; a monitor whose window holds every row says the same
    with both.monitor(window=783, blocks=1) as whole:
        both.predict(s1)
        both.predict(s2)
        assert drift_report(whole.profile, added) == whole.report()


def test_threads_lose_no_count(model: Model) -> None:
    rows = dd.rows(dd.table(400, seed=21))
    with model.monitor(window=1000) as mon:
        def work(part: list[dict[str, Any]]) -> None:
            for r in part:
                model.predict(r)
            model.predict(part)
        threads = [threading.Thread(target=work, args=(rows[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = mon.summary()
    one = load(model.source.parent)  # the same bundle, one thread
    with one.monitor(window=1000) as ref:
        one.predict(rows)
        one.predict(rows)
        assert got["rows"] == 800 and got["counts"] == ref.summary()["counts"]


def test_closed_monitor_counts_nothing_and_the_model_has_no_hook_left(model: Model) -> None:
    mon = model.monitor(window=10)
    model.predict(dd.table(10, seed=3))
    mon.close()
    model.predict(dd.table(10, seed=4))
    assert mon.rows == 10
    assert model._monitors == ()


def test_thresholds_are_calibrated_for_the_window_size(model: Model) -> None:
    small, large = (_one_report(model, w) for w in (50, 2000))
    for stat in ("psi", "js", "linf"):
        assert small["x_normal"]["threshold"][stat] > 2 * large["x_normal"]["threshold"][stat]


def _one_report(model: Model, window: int) -> dict[str, dict[str, Any]]:
    with model.monitor(window=window) as mon:
        model.predict(dd.table(window, seed=window))
        return mon.report()


def test_binomial_quantile_is_scipys() -> None:
    from scipy.stats import binom

    for n, p in [(300, 2 / 6001), (300, 0.05), (1000, 0.3), (50_000, 0.01), (10, 0.999)]:
        assert binomial_quantile(n, p) == int(binom.ppf(QUANTILE, n, p)), (n, p)


def test_arguments_and_bundles_without_a_profile_are_refused(model: Model, bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of blocks"):
        model.monitor(window=1234)
    with pytest.raises(ValueError, match="window must be"):
        model.monitor(window=0)
    bare = load(bundle / "model.onnx")
    with pytest.raises(BundleError, match="has no profile.json") as err:
        bare.monitor(window=100)
    assert "\n" not in str(err.value)
    with pytest.raises(Exception, match="different profiles"):
        add_summaries(model.monitor(window=10).summary(), {**model.monitor(window=10).summary(),
                                                         "profile_sha256": "0" * 64})


def test_cli_monitor_table_json_plot_and_check(bundle: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    shifted, same = tmp_path / "shifted.csv", tmp_path / "same.csv"
    dd.table(500, seed=31, shift="x_normal").to_csv(shifted, index=False)
    dd.table(500, seed=32).to_csv(same, index=False)
    png = tmp_path / "drift.png"
    assert main(["monitor", str(bundle), "--input", str(shifted), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "drift: psi, js, linf" in lines["x_normal"] and lines["x_skewed"].rstrip().endswith("ok")
    assert "500 rows" in out and "drift in: x_normal" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["monitor", str(bundle), "--input", str(shifted), "--check"]) == 1
    capsys.readouterr()
    assert main(["monitor", str(bundle), "--input", str(same), "--check", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["rows"] == 500 and not any(r["drift"] for r in doc["report"].values())
    # the file's counts are the rows' own: x_skewed's bins recomputed from the CSV
    edges = json.loads((bundle / "profile.json").read_text())["features"]["x_skewed"]["edges"]
    col = dd.table(500, seed=32)["x_skewed"].to_numpy()
    assert doc["summary"]["counts"]["x_skewed"]["bins"] == np.histogram(col, [-np.inf, *edges, np.inf])[0].tolist()


def test_cli_monitor_of_a_bundle_without_profile(bundle: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from skedge.cli import main

    old = shutil.copytree(bundle, tmp_path / "old")  # as a bundle exported before profiles looks
    (old / "profile.json").unlink()
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["files"]["profile.json"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    rows = tmp_path / "rows.csv"
    dd.table(20, seed=1).to_csv(rows, index=False)
    assert main(["monitor", str(old), "--input", str(rows)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no profile.json" in err and "export it again" in err


def test_every_prediction_method_is_counted_and_answers_alike(bundle: Path) -> None:
    plain, watched = load(bundle), load(bundle)
    frame = dd.table(50, seed=41)
    row = dd.rows(frame)[0]
    with watched.monitor(window=10) as mon:
        assert watched.predict(row) == plain.predict(row)
        assert np.array_equal(watched.predict_proba(row), plain.predict_proba(row))
        assert np.array_equal(watched.predict_proba(frame), plain.predict_proba(frame))
        got, want = watched.predict_outputs(frame), plain.predict_outputs(frame)
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
        assert mon.rows == 1 + 1 + 50 + 50
        # the answers counted are the model's labels, also where only probabilities were asked for
        labels = np.concatenate([[plain.predict(row)] * 2, plain.predict(frame), plain.predict(frame)])
        pred = mon.summary()["counts"]["prediction"]["bins"]
        assert pred == [int((labels == "no").sum()), int((labels == "yes").sum()), 0]


def test_cli_monitor_reads_parquet_as_it_reads_the_same_rows_in_csv(bundle: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # every .parquet input used to be refused: "expected a finite number, got <pyarrow.lib.DoubleArray ...>"
    from skedge.cli import main

    frame = dd.table(300, seed=33, shift="x_normal")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet")
    docs = []
    for name in ("rows.csv", "rows.parquet"):
        assert main(["monitor", str(bundle), "--input", str(tmp_path / name), "--json"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert docs[1]["summary"]["rows"] == 300
    assert docs[1]["summary"]["counts"] == docs[0]["summary"]["counts"]
    edges = json.loads((bundle / "profile.json").read_text())["features"]["x_skewed"]["edges"]
    col = frame["x_skewed"].to_numpy()
    assert docs[1]["summary"]["counts"]["x_skewed"]["bins"] == np.histogram(col, [-np.inf, *edges, np.inf])[0].tolist()
