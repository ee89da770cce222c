"""What missing means (issues 10.2, 10.3, 11.4): one list of missing spellings for files, None/NaN for rows,
"" a string answered as sklearn answers it, numbers declared categories keep their spelling.

Every answer is compared with the fitted sklearn pipeline's own output on the same input, never with the
runtime itself.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from skedge.runtime import MISSING_CATEGORY, MISSING_TEXT, SchemaError, load
from skedge.runtime._predict_cli import run_predict
from skedge.runtime.missing import category_text

COLORS = ["red", "green", "blue", " ", "", "Zoë"]


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    color = rng.choice(np.array(COLORS + [None], dtype=object), n)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    z = rng.normal(size=n)
    score = np.nan_to_num(x) + 0.5 * z + np.select(
        [color == "red", color == "", color == " ", pd.isna(color)], [1.5, 2.0, -1.5, -2.0], 0.0)
    frame = pd.DataFrame({"x": x, "z": z, "color": pd.Series(color, dtype=object).where(pd.notna(color), np.nan)})
    return frame, np.where(score > 0.3, "yes", "no")


def _pipeline(handle_unknown: str = "ignore") -> Pipeline:
    cat = Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                    ("onehot", OneHotEncoder(handle_unknown=handle_unknown, sparse_output=False))])
    pre = ColumnTransformer([("num", SimpleImputer(strategy="median"), ["x", "z"]), ("cat", cat, ["color"])])
    return Pipeline([("features", pre), ("model", LogisticRegression(C=10.0, max_iter=1000))])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, Path]:
    """A pipeline that learned "" and " " as categories of their own, and imputes missing ones; its bundle."""
    from skedge.exporter import export

    X, y = _frame(600, 0)
    pipe = _pipeline().fit(X, y)
    bundle = export(pipe, X, tmp_path_factory.mktemp("missing"), name="colors", targets=["onnx"])
    return pipe, bundle


def _sk(pipe: Pipeline, rows: list[dict[str, Any]], method: str = "predict_proba") -> np.ndarray:
    frame = pd.DataFrame({k: pd.Series([r[k] for r in rows], dtype=object if k == "color" else float)
                          for k in ("x", "z", "color")})
    frame["color"] = frame["color"].where(frame["color"].map(lambda v: isinstance(v, str)), np.nan)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unknown categories.*", category=UserWarning)
        out: np.ndarray = getattr(pipe, method)(frame)
    return out


# -- one list ---------------------------------------------------------------------------------------------

def test_the_missing_spellings_are_pandas_own() -> None:
    from pandas._libs.parsers import STR_NA_VALUES

    assert set(MISSING_TEXT) == set(STR_NA_VALUES)
    assert MISSING_CATEGORY not in MISSING_TEXT and MISSING_CATEGORY != ""


def test_the_marker_is_recorded_in_the_model_metadata(fitted: tuple[Pipeline, Path]) -> None:
    import json

    import onnx

    _, bundle = fitted
    meta = {p.key: p.value for p in onnx.load(str(bundle / "model.onnx")).metadata_props}
    assert json.loads(meta["skedge.schema"])["missing_category"] == "\uffff"
    # a bare .onnx describes itself the same way
    assert load(bundle / "model.onnx").schema.missing_category == "\uffff"


# -- "" is a string, None and NaN are missing: against sklearn ---------------------------------------------

@pytest.mark.parametrize("value", ["", " ", "red", "Zoë", "never-seen", "\t", "x" * 300, "日本語", None, np.nan])
def test_each_value_answers_as_sklearn_does(fitted: tuple[Pipeline, Path], value: Any) -> None:
    pipe, bundle = fitted
    model = load(bundle)
    rows = [{"x": 0.1, "z": -0.2, "color": value}, {"x": None, "z": 0.4, "color": value}]
    np.testing.assert_allclose(model.predict_proba(rows), _sk(pipe, rows), rtol=0, atol=1e-9)
    assert list(model.predict(rows)) == list(_sk(pipe, rows, "predict"))
    # one row (the fast path for known strings) and a DataFrame answer the same
    np.testing.assert_allclose(model.predict_proba(rows[0]), _sk(pipe, rows[:1])[0], rtol=0, atol=1e-9)
    frame = pd.DataFrame(rows)
    np.testing.assert_allclose(model.predict_proba(frame), _sk(pipe, rows), rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", ["str", "string", "string[pyarrow]", "string[python]"])
def test_text_dtype_frames_answer_like_sklearn(fitted: tuple[Pipeline, Path], dtype: str) -> None:
    """pandas' text columns are factorized (each distinct value decided once): the same answers as rows."""
    pipe, bundle = fitted
    model = load(bundle)
    values: list[Any] = ["", " ", "red", "Zoë", "never-seen", "\t", None, "green", np.nan, "red"] * 30
    rows = [{"x": 0.1 * i, "z": -0.2, "color": v} for i, v in enumerate(values)]
    frame = pd.DataFrame(rows).astype({"color": dtype})
    assert type(frame["color"].dtype).__name__ == "StringDtype"
    before = model.unseen_categories.get("color", 0)
    np.testing.assert_allclose(model.predict_proba(frame), _sk(pipe, rows), rtol=0, atol=1e-9)
    assert model.unseen_categories["color"] - before == 2 * 30  # "never-seen" and "\t" each time they come
    assert list(model.predict(frame)) == list(_sk(pipe, rows, "predict"))


def test_text_dtype_frames_name_the_row_of_a_bad_value(fitted: tuple[Pipeline, Path]) -> None:
    _, bundle = fitted
    model = load(bundle)
    frame = pd.DataFrame({"x": [0.1] * 5, "z": [0.0] * 5, "color": ["red", "", None, MISSING_CATEGORY, "blue"]})
    frame = frame.astype({"color": "str"})
    with pytest.raises(SchemaError, match="row 3, field 'color': got '\\\\uffff', the value skedge feeds"):
        model.predict(frame)
    from skedge.runtime import Feature, Schema
    from skedge.runtime._schema import InputPlan

    plan = InputPlan(Schema(features=(Feature("c", "category", nullable=False, categories=("a",)),),
                            task="classification"))
    with pytest.raises(SchemaError, match="row 2, field 'c': expected a string, got a missing value"):
        plan.feeds(pd.DataFrame({"c": pd.Series(["a", "b", None], dtype="str")}))
    feeds, _, _ = plan.feeds(pd.DataFrame({"c": pd.Series(["a", "", "b"], dtype="str")}))
    assert feeds["c"][:, 0].tolist() == ["a", "", "b"]


def test_empty_string_and_missing_get_different_answers(fitted: tuple[Pipeline, Path]) -> None:
    """The case of issue 11.4: sklearn answers "" and missing differently, so the runtime must too."""
    pipe, bundle = fitted
    model = load(bundle)
    row = {"x": 0.1, "z": -0.2}
    empty, missing = _sk(pipe, [{**row, "color": ""}])[0], _sk(pipe, [{**row, "color": None}])[0]
    assert abs(empty[1] - missing[1]) > 0.3  # the data gives them opposite effects: the test can fail
    np.testing.assert_allclose(model.predict_proba({**row, "color": ""}), empty, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict_proba({**row, "color": None}), missing, rtol=0, atol=1e-9)


def test_empty_string_in_a_not_nullable_field_is_a_string() -> None:
    from skedge.runtime import Feature, Schema
    from skedge.runtime._schema import InputPlan

    plan = InputPlan(Schema(features=(Feature("c", "category", nullable=False, categories=("a",)),),
                            task="classification"))
    feeds, n, _ = plan.feeds([{"c": ""}, {"c": " "}])
    assert n == 2 and feeds["c"][:, 0].tolist() == ["", " "]
    with pytest.raises(SchemaError, match="row 0, field 'c': expected a string, got a missing value"):
        plan.feeds([{"c": None}])


def test_the_marker_itself_is_refused_in_a_row(fitted: tuple[Pipeline, Path]) -> None:
    _, bundle = fitted
    model = load(bundle)
    for rows in ({"x": 0.1, "z": 0.0, "color": MISSING_CATEGORY},
                 [{"x": 0.1, "z": 0.0, "color": "red"}, {"x": 0.1, "z": 0.0, "color": MISSING_CATEGORY}]):
        with pytest.raises(SchemaError, match="field 'color': got '\\\\uffff', the value skedge feeds") as info:
            model.predict(rows)
        assert info.value.field == "color"


def test_under_handle_unknown_error_an_unseen_empty_string_is_refused_like_sklearn(
        tmp_path: Path) -> None:
    from skedge.exporter import export

    X, y = _frame(400, 1)
    keep = X["color"].isin(["red", "green", "blue"]) | X["color"].isna()
    X, y = X[keep].reset_index(drop=True), y[keep.to_numpy()]
    pipe = _pipeline("error").fit(X, y)
    model = load(export(pipe, X, tmp_path, name="strict-colors", targets=["onnx"]))
    with pytest.raises(ValueError, match="unknown categories"):
        _sk(pipe, [{"x": 0.0, "z": 0.0, "color": ""}])
    with pytest.raises(SchemaError, match="row 0, field 'color': expected one of"):
        model.predict({"x": 0.0, "z": 0.0, "color": ""})
    rows: list[dict[str, Any]] = [{"x": 0.0, "z": 0.0, "color": None}, {"x": 1.0, "z": 0.0, "color": "red"}]
    np.testing.assert_allclose(model.predict_proba(rows), _sk(pipe, rows), rtol=0, atol=1e-9)


def test_golden_rows_hold_the_hard_strings(fitted: tuple[Pipeline, Path]) -> None:
    import json

    _, bundle = fitted
    golden = json.loads((bundle / "golden.json").read_text(encoding="utf-8"))
    colors = {r["color"] for r in golden["rows"]}
    for text in ("", " ", "\t", "x" * 200, "café", "日本語", "\U0001f427", "None", "NaN"):
        assert text in colors, text
    assert None in colors
    assert load(bundle).verify().passed


# -- files: every missing spelling pandas knows, through `skedge predict` ----------------------------------

def _predict_file(bundle: Path, src: Path, out: Path) -> pd.DataFrame:
    args = argparse.Namespace(bundle=str(bundle), input=str(src), output=str(out), keep=[], target="onnx",
                              engine="local", scheduler=None, workers=None)
    assert run_predict(args) == 0
    return pd.read_csv(out, keep_default_na=False)


@pytest.mark.parametrize("spelling", sorted(MISSING_TEXT))
def test_the_training_csv_predicts_like_the_pipeline_for_every_missing_spelling(
        fitted: tuple[Pipeline, Path], tmp_path: Path, spelling: str) -> None:
    pipe, bundle = fitted
    X, _ = _frame(120, 2)
    X = X[X["color"] != ""]  # a CSV has no "" distinct from an empty cell: an empty cell is missing
    assert X["x"].isna().any() and X["color"].isna().any()
    src = tmp_path / "rows.csv"
    X.to_csv(src, index=False, na_rep=spelling)
    assert src.read_text().count(spelling) >= int(X.isna().sum().sum())
    got = _predict_file(bundle, src, tmp_path / "pred.csv")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unknown categories.*", category=UserWarning)
        read = pd.read_csv(src)
        want = pipe.predict_proba(read)
        labels = pipe.predict(read)
    assert read["x"].isna().sum() == X["x"].isna().sum()  # pandas itself read the spelling as missing
    np.testing.assert_allclose(got[["proba_no", "proba_yes"]].to_numpy(), want, rtol=0, atol=1e-9)
    assert got["prediction"].tolist() == labels.tolist()


# -- numbers declared categories keep their spelling (issue 10.3) ------------------------------------------

@pytest.mark.parametrize(("value", "text"), [(101, "101"), (101.0, "101"), (np.int64(101), "101"),
                                             (np.float32(2.5), "2.5"), (-0.0, "0"), (1e21, "1" + "0" * 21),
                                             ("101.0", "101.0"), ("101", "101")])
def test_category_text(value: Any, text: str) -> None:
    assert category_text(value) == text


@pytest.mark.parametrize("value", [True, np.datetime64("2020-01-01"), np.timedelta64(5, "s"), [1], b"1"])
def test_category_text_refuses_what_is_not_text_or_a_number(value: Any) -> None:
    with pytest.raises(TypeError):
        category_text(value)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Path]:
    """A trained bundle whose whole-number column store_id is declared a category (with blanks, so pandas
    reads it as float64: 101.0)."""
    from skedge.trainer import train

    rng = np.random.default_rng(3)
    n = 400
    ids = rng.choice([101, 205, 333, 418, 502, 610], n)
    good = np.isin(ids, [101, 333, 610])
    store = pd.Series(ids, dtype="Int64")
    store[rng.random(n) < 0.08] = pd.NA
    x = rng.normal(size=n)
    y = np.where(good ^ (rng.random(n) < 0.05), "high", "low")
    root = tmp_path_factory.mktemp("stores")
    csv = root / "stores.csv"
    pd.DataFrame({"store_id": store, "x": x, "y": y}).to_csv(csv, index=False)
    (root / "stores.toml").write_text(
        'name = "stores"\nversion = "1.0.0"\nseed = 1\n\n[data]\npath = "stores.csv"\ntarget = "y"\n'
        'kinds = { store_id = "category" }\n\n[model]\nestimator = "logistic_regression"\n\n'
        '[evaluation]\nholdout = 0.2\ngates = {}\n\n[export]\ntargets = ["onnx"]\n')
    result = train(root / "stores.toml", out=root / "models")
    return result, csv, root


def test_a_whole_number_category_keeps_its_spelling(stores: tuple[Any, Path, Path], tmp_path: Path) -> None:
    result, csv, root = stores
    model = load(result.path)
    assert model.schema.feature("store_id").categories == ("101", "205", "333", "418", "502", "610")
    # skedge predict on the training file itself gives the pipeline's own predictions
    from skedge.trainer.data import load_table, prepare

    ds = prepare(load_table(csv), target="y", drop=[], kinds={"store_id": "category"})
    assert pd.read_csv(csv)["store_id"].dtype == np.float64  # pandas read 101.0: the case of the issue
    want = result.pipeline.predict(ds.X)
    got = _predict_file(result.path, csv, tmp_path / "pred.csv")
    assert int((got["prediction"].to_numpy() != want).sum()) == 0
    assert model.unseen_categories == {}


def test_a_number_for_a_category_field_is_matched_by_the_same_rule(stores: tuple[Any, Path, Path]) -> None:
    result, _, _ = stores
    model = load(result.path)
    answers = [model.predict_proba({"store_id": v, "x": 0.0}) for v in (333, 333.0, np.int64(333), "333")]
    for a in answers[1:]:
        np.testing.assert_array_equal(a, answers[0])
    want = result.pipeline.predict_proba(pd.DataFrame({"store_id": ["333"], "x": [0.0]}))[0]
    np.testing.assert_allclose(answers[0], want, rtol=0, atol=1e-9)
    assert model.unseen_categories == {}
    # a DataFrame with an integer column, and a column of floats with a gap, are the same categories
    frame = pd.DataFrame({"store_id": pd.Series([101, 333, None], dtype="Int64"), "x": [0.0, 1.0, 2.0]})
    sk = pd.DataFrame({"store_id": ["101", "333", np.nan], "x": [0.0, 1.0, 2.0]})
    np.testing.assert_allclose(model.predict_proba(frame), result.pipeline.predict_proba(sk), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict_proba(frame.astype({"store_id": float})),
                               result.pipeline.predict_proba(sk), rtol=0, atol=1e-9)
    assert model.unseen_categories == {}
    with pytest.raises(SchemaError, match="row 0, field 'store_id': expected a string, got True"):
        model.predict({"store_id": True, "x": 0.0})


def test_a_declared_category_keeps_leading_zeros(tmp_path: Path) -> None:
    """Zip codes declared a category are text from the file on: 02139 and 2139 stay two categories."""
    from skedge.trainer import train

    rng = np.random.default_rng(5)
    zips = np.array(["02139", "2139", "00501", "501", "10001", "94105"])
    z = rng.choice(zips, 300)
    y = np.where(np.isin(z, ["02139", "00501", "94105"]) ^ (rng.random(300) < 0.05), "yes", "no")
    csv = tmp_path / "zips.csv"
    pd.DataFrame({"zip": z, "x": rng.normal(size=300), "y": y}).to_csv(csv, index=False)
    (tmp_path / "zips.toml").write_text(
        'name = "zips"\nversion = "1.0.0"\nseed = 1\n\n[data]\npath = "zips.csv"\ntarget = "y"\n'
        'kinds = { zip = "category" }\n\n[model]\nestimator = "logistic_regression"\n\n'
        '[evaluation]\nholdout = 0.2\ngates = {}\n\n[export]\ntargets = ["onnx"]\n')
    result = train(tmp_path / "zips.toml", out=tmp_path / "models")
    model = load(result.path)
    assert model.schema.feature("zip").categories == tuple(sorted(zips))
    frame = pd.read_csv(csv, dtype={"zip": str})
    want = result.pipeline.predict(frame.drop(columns="y"))
    got = _predict_file(result.path, csv, tmp_path / "pred.csv")
    assert int((got["prediction"].to_numpy() != want).sum()) == 0
    assert model.unseen_categories == {}
    np.testing.assert_array_equal(model.predict(frame.drop(columns="y")), want)


def test_a_model_from_before_the_marker_keeps_its_contract() -> None:
    """A schema without missing_category was exported when the graph took "" as missing: it still does."""
    from skedge.runtime import Schema
    from skedge.runtime._schema import InputPlan

    old = {"format": 1, "task": "classification", "classes": ["a", "b"], "outputs": {},
           "features": [{"name": "c", "kind": "category", "nullable": True, "categories": ["u"]}]}
    schema = Schema.from_json(old)
    assert schema.missing_category == ""
    feeds, _, _ = InputPlan(schema).feeds([{"c": None}, {"c": ""}, {"c": "u"}])
    assert feeds["c"][:, 0].tolist() == ["", "", "u"]
    new = Schema.from_json({**old, "missing_category": MISSING_CATEGORY})
    feeds, _, _ = InputPlan(new).feeds([{"c": None}, {"c": ""}, {"c": "u"}])
    assert feeds["c"][:, 0].tolist() == [MISSING_CATEGORY, "", "u"]
    assert Schema.from_json(new.to_json()) == new


@pytest.mark.parametrize(("cell", "known", "fed"), [
    ("101.0", ("101", "205"), "101"),      # pandas read the column as numbers: the trainer spelled them "101"
    ("101", ("101", "205"), "101"),
    ("1e2", ("100",), "100"),
    ("101.0", ("101.0", "abc"), "101.0"),  # a column of words kept "101.0" as text: a known category stays
    (" 7 ", ("7",), "7"),
    ("abc", ("abc",), "abc"),
    ("0x10", ("16",), "0x10"),             # not a number to pandas
])
def test_a_category_cell_is_spelled_as_the_trainer_spelled_it(tmp_path: Path, cell: str, known: tuple[str, ...],
                                                             fed: str) -> None:
    from skedge.runtime import Feature, Schema
    from skedge.runtime._files import iter_chunks

    schema = Schema(features=(Feature("c", "category", categories=known),), task="classification")
    src = tmp_path / "rows.csv"
    src.write_text(f"c\n{cell}\nNA\n#N/A\n", encoding="utf-8")
    (chunk,) = iter_chunks(src, schema)
    assert chunk.features["c"] == [fed, None, None]
