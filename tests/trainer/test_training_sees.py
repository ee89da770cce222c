"""Training says what it sees: high-cardinality text, stray text in a number column, booleans with blanks,
inf, a single class, a holdout too small for the table. Each a decision the user sees, named in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skedge.runtime import ConfigError, DataError, load
from skedge.trainer import estimators as est_mod
from skedge.trainer import fit, load_config, train
from skedge.trainer.checks import DataWarning
from skedge.trainer.data import load_table, prepare

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return pd.read_csv(EXAMPLES / "penguins.csv")


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "d.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _prepare(path: Path, **kw: object) -> object:
    return prepare(load_table(path), target="species", drop=[], kinds=kw.pop("kinds", {}),  # type: ignore[arg-type]
                   source=str(path), **kw)  # type: ignore[arg-type]


def _config(tmp_path: Path, data: Path, extra: str = "", data_extra: str = "", target: str = "species") -> Path:
    p = tmp_path / "c.toml"
    p.write_text(f'name = "seen"\nseed = 3\n[data]\npath = "{data}"\ntarget = "{target}"\n{data_extra}\n'
                 f'[model]\nestimator = "decision_tree"\nparams = {{ max_depth = 3 }}\n[export]\ntargets = ["onnx"]\n'
                 f"{extra}")
    return p


# -- high-cardinality text -------------------------------------------------------------------------------------

def _with_ids_and_dates(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["customer_id"] = [f"C{i:05d}" for i in range(len(out))]
    out["signup"] = pd.date_range("2020-01-01", periods=len(out), freq="D").strftime("%Y-%m-%d")
    return out


def test_an_id_column_is_refused_with_its_level_count(tmp_path: Path, penguins: pd.DataFrame) -> None:
    path = _csv(tmp_path, _with_ids_and_dates(penguins))
    with pytest.raises(DataError) as exc:
        _prepare(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: column 'customer_id' has 344 distinct values in 344 rows (every value differs: "
                          "an id?)")
    assert 'data.drop = ["customer_id"]' in msg and 'data.kinds = { customer_id = "category" }' in msg
    assert 'features.high_cardinality = "keep"' in msg and "\n" not in msg


def test_a_date_column_is_named_as_dates(tmp_path: Path, penguins: pd.DataFrame) -> None:
    path = _csv(tmp_path, _with_ids_and_dates(penguins).drop(columns="customer_id"))
    with pytest.raises(DataError, match=r"column 'signup' has 344 distinct values in 344 rows \(dates or times\? "
                                        r"derive year, month or day of week from them instead\)"):
        _prepare(path)


def test_drop_leaves_them_out_with_a_warning_each(tmp_path: Path, penguins: pd.DataFrame) -> None:
    path = _csv(tmp_path, _with_ids_and_dates(penguins))
    with pytest.warns(DataWarning) as record:
        ds = _prepare(path, high_cardinality_mode="drop")
    assert [str(w.message).split(": ", 1)[1].split(" left out")[0] for w in record] == ["column 'customer_id'",
                                                                                         "column 'signup'"]
    assert "344 distinct values in 344 rows" in str(record[0].message)
    names = [f.name for f in ds.features]  # type: ignore[attr-defined]
    assert "customer_id" not in names and "signup" not in names and "island" in names


def test_keep_and_a_declared_category_keep_them(tmp_path: Path, penguins: pd.DataFrame) -> None:
    path = _csv(tmp_path, _with_ids_and_dates(penguins))
    ds = _prepare(path, high_cardinality_mode="keep")
    feats = {f.name: f for f in ds.features}  # type: ignore[attr-defined]
    assert len(feats["customer_id"].categories) == 344
    # declared in data.kinds: the user said so; the other (undeclared) column is still refused
    with pytest.raises(DataError, match="column 'signup' has 344 distinct values"):
        _prepare(path, kinds={"customer_id": "category"})


def test_a_small_id_column_is_refused_under_max_levels() -> None:
    """30 rows, 30 different values: below max_levels, still an id (every holdout value would be unseen)."""
    frame = pd.DataFrame({"ref": [f"R{i}" for i in range(30)], "x": np.arange(30.0), "species": ["a", "b"] * 15})
    with pytest.raises(DataError, match=r"column 'ref' has 30 distinct values in 30 rows \(every value differs: an "
                                        r"id\?\).* refused because every value differs, whatever "
                                        r"features.max_levels = 100 says\)$"):
        prepare(frame, target="species", drop=[], kinds={})
    few = frame.head(19)  # fewer rows than MIN_ROWS_FOR_AN_ID: a small table's distinct labels are not an id yet
    assert prepare(few, target="species", drop=[], kinds={}).features[0].kind == "category"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(levels=st.integers(min_value=2, max_value=60), max_levels=st.integers(min_value=2, max_value=60))
def test_refused_exactly_above_max_levels(levels: int, max_levels: int) -> None:
    frame = pd.DataFrame({"code": [f"k{i % levels}" for i in range(120)], "x": np.arange(120.0),
                          "species": ["a", "b"] * 60})
    if levels > max_levels:
        with pytest.raises(DataError, match=rf"column 'code' has {levels} distinct values in 120 rows"):
            prepare(frame, target="species", drop=[], kinds={}, max_levels=max_levels)
    else:
        ds = prepare(frame, target="species", drop=[], kinds={}, max_levels=max_levels)
        assert len(ds.features[0].categories or ()) == levels


def test_the_default_keeps_the_bundled_examples_and_train_refuses_before_fitting(
        tmp_path: Path, penguins: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path, _csv(tmp_path, _with_ids_and_dates(penguins)))
    fitted = []
    monkeypatch.setattr("sklearn.pipeline.Pipeline.fit", lambda *a, **k: fitted.append(1))
    with pytest.raises(DataError, match="column 'customer_id' has 344 distinct values"):
        train(cfg, tmp_path / "models")
    assert not fitted and not (tmp_path / "models").exists()


def test_dropped_columns_are_not_in_the_bundle(tmp_path: Path, penguins: pd.DataFrame) -> None:
    """The 5.9 MB-instead-of-85 KB case: with "drop" the model has no one-hot of ids, and says so once."""
    cfg = _config(tmp_path, _csv(tmp_path, _with_ids_and_dates(penguins)), '[features]\nhigh_cardinality = "drop"\n')
    with pytest.warns(DataWarning, match="left out"):
        path = train(cfg, tmp_path / "models").path
    model = load(path)
    assert [f.name for f in model.schema.features] == [c for c in penguins.columns if c != "species"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["provenance"]["data"]["left_out_columns"] == {"customer_id": 344, "signup": 344}


# -- a number column with a few text cells ---------------------------------------------------------------------

def test_one_unknown_cell_is_reported_not_made_a_category(tmp_path: Path, penguins: pd.DataFrame) -> None:
    frame = penguins.copy()
    frame["body_mass_g"] = frame["body_mass_g"].astype(object)
    frame.loc[41, "body_mass_g"] = "unknown"
    path = _csv(tmp_path, frame)
    with pytest.raises(DataError) as exc:
        _prepare(path)
    levels = frame["body_mass_g"].dropna().nunique()
    assert str(exc.value) == (
        f"{path}: column 'body_mass_g' holds numbers, but 1 of its 342 cells are not numbers (row 41 'unknown'); "
        f"pandas would have made it a category of {levels} levels. Blank those cells (a blank is a missing value), "
        'or declare it a category: data.kinds = { body_mass_g = "category" }')


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.dictionaries(st.integers(min_value=0, max_value=199),
                           st.text(alphabet="abcxyz?-!# ", min_size=1, max_size=8).filter(
                               lambda t: t.strip() not in ("", "n/a", "NA", "nan", "null", "NULL", "N/A", "None")),
                           min_size=1, max_size=9))
def test_stray_text_cells_are_named_by_row_and_value(bad: dict[int, str]) -> None:
    col: list[object] = [float(i) for i in range(200)]
    for row, text in bad.items():
        col[row] = text
    frame = pd.DataFrame({"x": pd.Series(col, dtype=object).astype(str), "species": ["a", "b"] * 100})
    with pytest.raises(DataError) as exc:
        prepare(frame, target="species", drop=[], kinds={})
    msg = str(exc.value)
    rows = sorted(bad)
    assert f"{len(rows)} of its 200 cells are not numbers" in msg
    for row in rows[:5]:
        assert f"row {row} {bad[row]!r}" in msg
    assert (f"and {len(rows) - 5} more" in msg) == (len(rows) > 5)


def test_a_declared_number_lists_the_cells_too(tmp_path: Path, penguins: pd.DataFrame) -> None:
    frame = penguins.copy()
    frame["year"] = frame["year"].astype(object)
    frame.loc[[3, 50, 51], "year"] = ["late", "?", "soon"]
    path = _csv(tmp_path, frame)
    with pytest.raises(DataError, match=r"row 3, column 'year': expected a number, got 'late' \(3 such cells: row 3 "
                                        r"'late', row 50 '\?', row 51 'soon'\)"):
        _prepare(path, kinds={"year": "number"})


def test_row_numbers_are_the_files_even_after_rows_without_a_target(tmp_path: Path,
                                                                    penguins: pd.DataFrame) -> None:
    frame = penguins.copy()
    frame.loc[[0, 1, 2], "species"] = np.nan  # left out: the bad cell below is still data row 10 of the file
    frame["body_mass_g"] = frame["body_mass_g"].astype(object)
    frame.loc[10, "body_mass_g"] = "heavy"
    with pytest.raises(DataError, match=r"\(row 10 'heavy'\)"):
        _prepare(_csv(tmp_path, frame))


# -- booleans with blanks, inf ---------------------------------------------------------------------------------

def test_true_false_with_blanks_is_a_nullable_boolean(tmp_path: Path, penguins: pd.DataFrame) -> None:
    frame = penguins.copy()
    frame["tagged"] = (frame["flipper_length_mm"] > 200).astype(object)
    frame.loc[frame.index[::9], "tagged"] = None
    path = _csv(tmp_path, frame)
    assert pd.read_csv(path)["tagged"].dtype == object  # what pandas gives: objects, not bools
    ds = _prepare(path)
    feat = next(f for f in ds.features if f.name == "tagged")  # type: ignore[attr-defined]
    assert (feat.kind, feat.nullable) == ("boolean", True)
    got = ds.X["tagged"]  # type: ignore[attr-defined]
    expect = (penguins["flipper_length_mm"] > 200).astype(np.float64)
    expect[penguins.index[::9]] = np.nan
    np.testing.assert_array_equal(got.to_numpy(), expect.to_numpy())


def test_boolean_words_and_a_bad_cell(tmp_path: Path) -> None:
    frame = pd.DataFrame({"b": ["TRUE", "false", np.nan, "True", "maybe", "2"] * 10, "species": ["x", "y"] * 30})
    with pytest.raises(DataError, match=r"column 'b': expected a boolean \(True/False or 0/1, blank for missing\), "
                                        r"got row 4 'maybe', row 5 '2', row 10 'maybe'"):
        prepare(frame, target="species", drop=[], kinds={"b": "boolean"})
    ok = prepare(frame[~frame.b.isin(["maybe", "2"])], target="species", drop=[], kinds={})
    assert ok.features[0].kind == "boolean"
    assert ok.X["b"].tolist()[:2] == [1.0, 0.0]


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_the_data_is_refused_with_its_rows(tmp_path: Path, penguins: pd.DataFrame, value: float) -> None:
    frame = penguins.copy()
    frame.loc[[5, 7], "bill_depth_mm"] = value
    path = _csv(tmp_path, frame)
    with pytest.raises(DataError, match=rf"column 'bill_depth_mm' holds infinite values \(row 5 {value}, row 7 "
                                        rf"{value}\); blank them \(missing\) or replace them with a finite number"):
        _prepare(path)


# -- the target and the split ----------------------------------------------------------------------------------

def test_a_single_class_target(tmp_path: Path, penguins: pd.DataFrame) -> None:
    frame = penguins[penguins.species == "Gentoo"]
    cfg = _config(tmp_path, _csv(tmp_path, frame))
    with pytest.raises(DataError, match=r"the target 'species' has a single class \('Gentoo'\) in all 124 rows with "
                                        r"a target: a classifier needs at least two"):
        fit(load_config(cfg))


def test_inf_in_a_regression_target(tmp_path: Path, penguins: pd.DataFrame) -> None:
    frame = penguins.copy()
    frame.loc[30, "body_mass_g"] = np.inf
    cfg = _config(tmp_path, _csv(tmp_path, frame), target="body_mass_g")
    with pytest.raises(DataError, match=r"the target 'body_mass_g' holds infinite values \(row 30 inf\); a target "
                                        r"must be a finite number or a label"):
        fit(load_config(cfg))


@pytest.mark.parametrize(("counts", "holdout", "expect"), [
    ({"Adelie": 6, "Gentoo": 6}, 0.05,
     r"evaluation.holdout = 0.05 of 12 rows holds out 1 row; each side needs at least 2 rows: raise "
     r"evaluation.holdout to 0.17 or more$"),
    ({"Adelie": 10, "Chinstrap": 10, "Gentoo": 10}, 0.05,
     r"evaluation.holdout = 0.05 of 30 rows holds out 2 rows; a stratified split needs at least one row of each of "
     r"the 3 classes on each side: raise evaluation.holdout to 0.1 or more, or set evaluation.stratify = false$"),
    ({"Adelie": 3, "Gentoo": 2}, 0.8, r"evaluation.holdout = 0.8 of 5 rows leaves 1 row to train on; each side needs "
                                      r"at least 2 rows: lower evaluation.holdout or add rows$"),
])
def test_a_holdout_too_small_for_the_table(tmp_path: Path, penguins: pd.DataFrame, counts: dict[str, int],
                                           holdout: float, expect: str) -> None:
    frame = pd.concat([penguins[penguins.species == s].head(n) for s, n in counts.items()])
    cfg = _config(tmp_path, _csv(tmp_path, frame), f"[evaluation]\nholdout = {holdout}\n")
    with pytest.raises(DataError, match=expect):
        fit(load_config(cfg))


def test_an_mlp_too_wide_for_the_real_table_is_refused_before_fitting(
        tmp_path: Path, penguins: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """At fit time the estimate uses the real width (one-hot levels) and row count: refused before pipe.fit."""
    monkeypatch.setattr(est_mod, "_memory_limit", lambda: 40_000)
    fitted = []
    monkeypatch.setattr("sklearn.pipeline.Pipeline.fit", lambda *a, **k: fitted.append(1))
    cfg = _config(tmp_path, EXAMPLES / "penguins.csv")
    cfg.write_text(cfg.read_text().replace('"decision_tree"', '"mlp"').replace("max_depth = 3",
                                                                                 "hidden_layer_sizes = [64]"))
    with pytest.raises(ConfigError, match=r"config: model.params.hidden_layer_sizes = \[64\] needs at least "
                                          r"[\d.]+ KiB to fit on 275 rows, 12 inputs, 3 outputs \(solver 'adam'\); "
                                          r"39.1 KiB are available"):
        fit(load_config(cfg))
    assert not fitted


def test_a_nullable_boolean_predicts_from_the_training_file_as_the_pipeline_does(
        tmp_path: Path, penguins: pd.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    """The runtime's CSV reader takes the training file's True/False/blank cells the way training did."""
    from skedge.cli import main

    frame = penguins.copy()
    frame["tagged"] = (frame["body_mass_g"] > 4000).astype(object)
    frame.loc[frame.index[::5], "tagged"] = None
    data = _csv(tmp_path, frame)
    cfg = _config(tmp_path, data, data_extra='drop = ["body_mass_g"]')
    result = train(cfg, tmp_path / "models")
    ds = _prepare(data)
    expect = result.pipeline.predict(ds.X.drop(columns="body_mass_g"))  # type: ignore[attr-defined]
    assert len(set(expect)) == 3 and "tagged" in result.pipeline.feature_names_in_
    out = tmp_path / "pred.csv"
    assert main(["predict", str(result.path), "--input", str(data), "--output", str(out)]) == 0, \
        capsys.readouterr().err
    got = pd.read_csv(out)
    label = next(c for c in got.columns if c in ("label", "prediction", "species", "predicted"))
    assert (got[label].astype(str).to_numpy() == np.asarray(expect, dtype=str)).all()


def test_a_target_with_no_values(penguins: pd.DataFrame) -> None:
    frame = penguins.head(30).assign(species=np.nan)
    with pytest.raises(DataError, match=r"data: no row has a value for the target 'species' \(all 30 are blank\)"):
        prepare(frame, target="species", drop=[], kinds={})
