"""Empty in, empty out (issue 11.5): zero rows in any accepted form give zero rows out, with the columns, dtypes
and class order a batch of one row gets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skedge.runtime import BatchScorer, load
from skedge.runtime._predict_cli import run_predict


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A classifier with int labels, a regressor and an anomaly model: each output kind and label dtype."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from skedge.exporter import export

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200).astype(object)})
    pre = ColumnTransformer([("num", "passthrough", ["x"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])])
    out = tmp_path_factory.mktemp("empty")
    fits = {
        "classes": Pipeline([("f", pre), ("m", LogisticRegression())]).fit(X, rng.choice([3, 1, 2], 200)),
        "regression": Pipeline([("f", pre), ("m", LinearRegression())]).fit(X, X["x"] * 2),
        "anomaly": Pipeline([("f", pre), ("m", IsolationForest(n_estimators=10, random_state=0))]).fit(X),
    }
    return {k: export(p, X, out, name=k, targets=["onnx"]) for k, p in fits.items()}


def _one(bundle: Path) -> dict[str, Any]:
    return {"x": 0.5, "c": "a"}


FORMS = {
    "list": lambda: [],
    "tuple": lambda: (),
    "columns": lambda: {"x": [], "c": []},
    "arrays": lambda: {"x": np.empty(0), "c": np.empty(0, dtype=object)},
    "frame": lambda: pd.DataFrame({"x": pd.Series([], dtype=float), "c": pd.Series([], dtype=object)}),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("kind", ["classes", "regression", "anomaly"])
def test_model_methods_answer_zero_rows_like_one_row(bundles: dict[str, Path], kind: str, form: str) -> None:
    model = load(bundles[kind])
    one = model.predict([_one(bundles[kind])])
    got = model.predict(FORMS[form]())
    assert isinstance(got, np.ndarray) and got.shape == (0,) and got.dtype == one.dtype
    if kind == "classes":
        assert model.classes == (1, 2, 3) and one.dtype == np.int64
        proba = model.predict_proba(FORMS[form]())
        assert proba.shape == (0, 3) and proba.dtype == np.float64
    if kind == "anomaly":
        score = model.decision_function(FORMS[form]())
        assert score.shape == (0,) and score.dtype == model.decision_function([_one(bundles[kind])]).dtype
    outputs = model.predict_outputs(FORMS[form]())
    full = model.predict_outputs([_one(bundles[kind])])
    assert set(outputs) == set(full)
    for k, v in outputs.items():
        assert v.shape[0] == 0 and v.shape[1:] == full[k].shape[1:] and v.dtype == full[k].dtype, k


@pytest.mark.parametrize("form", ["arrays", "columns", "frame"])  # a BatchScorer takes columns
@pytest.mark.parametrize("kind", ["classes", "regression", "anomaly"])
def test_batch_scorer_gives_the_columns_of_a_real_batch(bundles: dict[str, Path], kind: str, form: str) -> None:
    scorer = BatchScorer.load(bundles[kind])
    batch = FORMS[form]()
    full = scorer.score({"x": [0.5], "c": ["a"]})
    got = scorer.score(batch)
    assert list(got) == list(full) == list(scorer.columns)
    for k, v in got.items():
        assert v.shape == (0,) and v.dtype == full[k].dtype, k
    if kind == "classes":
        assert list(got) == ["prediction", "proba_1", "proba_2", "proba_3"]


def _predict(bundle: Path, src: Path, out: Path | None) -> None:
    args = argparse.Namespace(bundle=str(bundle), input=str(src), output=str(out) if out else None, keep=[],
                              target="onnx", engine="local", scheduler=None, workers=None)
    assert run_predict(args) == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_skedge_predict_on_an_empty_file_writes_an_empty_file_with_the_columns(
        bundles: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    src = tmp_path / f"rows.{fmt}"
    if fmt == "csv":
        src.write_text("x,c\n", encoding="utf-8")
    elif fmt == "jsonl":
        src.write_text("", encoding="utf-8")
    else:
        pytest.importorskip("pyarrow")
        pd.DataFrame({"x": pd.Series([], dtype=float), "c": pd.Series([], dtype=object)}).to_parquet(src)
    out = tmp_path / f"pred.{fmt}"
    _predict(bundles["classes"], src, out)
    if fmt == "csv":
        assert out.read_text(encoding="utf-8") == "prediction,proba_1,proba_2,proba_3\n"
    elif fmt == "jsonl":
        assert out.read_text(encoding="utf-8") == ""
    else:
        frame = pd.read_parquet(out)
        assert list(frame.columns) == ["prediction", "proba_1", "proba_2", "proba_3"] and len(frame) == 0
        assert frame["prediction"].dtype == np.int64 and frame["proba_1"].dtype == np.float64


def test_skedge_predict_to_stdout_prints_the_header(bundles: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "rows.csv"
    src.write_text("x,c\n", encoding="utf-8")
    _predict(bundles["regression"], src, None)
    assert capsys.readouterr().out == "prediction\n"


def test_an_empty_dask_partition_and_an_empty_frame(bundles: dict[str, Path]) -> None:
    dd = pytest.importorskip("dask.dataframe")
    from skedge.runtime.dask import score

    frame = pd.DataFrame({"x": [0.5, -1.0, 2.0, 0.1], "c": ["a", "b", "a", "b"], "id": [1, 2, 3, 4]})
    ddf = dd.from_pandas(frame, npartitions=2)
    ddf = ddf[ddf["id"] > 2]  # the first partition is now empty
    out = score(ddf, bundles["classes"], keep=["id"]).compute(scheduler="sync")
    want = load(bundles["classes"]).predict_proba(frame[frame["id"] > 2][["x", "c"]])
    np.testing.assert_array_equal(out[["proba_1", "proba_2", "proba_3"]].to_numpy(), want)
    empty = score(dd.from_pandas(frame.iloc[:0], npartitions=1), bundles["classes"]).compute(scheduler="sync")
    assert list(empty.columns) == ["prediction", "proba_1", "proba_2", "proba_3"] and len(empty) == 0
    assert empty["prediction"].dtype == np.int64 and empty["proba_3"].dtype == np.float64
    assert json.loads(json.dumps(list(out.columns))) == ["id", "prediction", "proba_1", "proba_2", "proba_3"]
