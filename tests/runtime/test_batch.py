"""The engine-neutral batch scorer and files in, files out (no Dask here: see tests/e2e/test_dask.py)."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skedge.runtime import BatchScorer, BundleError, DataError, SchemaError
from skedge.runtime._batch import ModelBytes, forget_scorer, installed_scorer, scorer_for
from skedge.runtime._files import ColumnWriter, find_inputs
from skedge.runtime._jobs import plan_outputs, score_file
from skedge.runtime._parity import compare_outputs

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "examples" / "penguins.csv"


@pytest.fixture(scope="module")
def scorer(penguins_bundle: Path) -> BatchScorer:
    return BatchScorer.load(penguins_bundle)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """2,000 rows drawn from the penguins table, measurements jittered, with an id and the target."""
    rng = np.random.default_rng(7)
    src = pd.read_csv(PENGUINS)
    df = src.iloc[rng.integers(0, len(src), 2000)].reset_index(drop=True)
    for c in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        df[c] = (df[c] * (1 + rng.normal(0, 0.03, len(df)))).round(2)
    df.insert(0, "id", np.arange(10_000, 12_000))
    return df


def _by_kind(out: dict[str, np.ndarray], classes: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {"label": out["prediction"], "probabilities": np.column_stack([out[f"proba_{c}"] for c in classes])}


def test_scores_the_golden_rows_like_sklearn(penguins_bundle: Path, scorer: BatchScorer) -> None:
    golden = json.loads((penguins_bundle / "golden.json").read_text())
    rows = golden["rows"]
    cols = {name: [r[name] for r in rows] for name in scorer.schema.names}
    out = scorer.score(cols)
    assert scorer.columns == ("prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo")
    assert list(out) == list(scorer.columns)
    parity = compare_outputs("batch", _by_kind(out, scorer.schema.classes), golden["expected"], golden["tolerance"])
    assert parity.passed, parity
    assert parity.label_mismatches == 0
    assert len(out["prediction"]) == len(rows) > 500


def test_every_batch_type_gives_the_same_bits(scorer: BatchScorer, frame: pd.DataFrame) -> None:
    ref = scorer.score(frame)  # a DataFrame, with id and species columns the model does not take
    table = pa.Table.from_pandas(frame, preserve_index=False)
    as_lists = {c: frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns}
    as_arrays = {c: frame[c].to_numpy() for c in frame.columns}
    for batch in (table, table.to_batches()[0], as_lists, as_arrays):
        got = scorer.score(batch)
        for name in scorer.columns:
            np.testing.assert_array_equal(got[name], ref[name], strict=True, err_msg=f"{type(batch)} {name}")
    assert set(ref["prediction"]) == {"Adelie", "Chinstrap", "Gentoo"}


def test_a_row_scores_the_same_whatever_batch_it_is_in(scorer: BatchScorer, frame: pd.DataFrame) -> None:
    # What lets Dask split a job anywhere: one intra-op thread, so a row's bits do not depend on
    # its neighbours. 2,000 rows at once (the size where a multi-threaded session would split
    # the work), against the same rows in uneven pieces.
    whole = scorer.score(frame)
    bounds = [0, 1, 8, 300, 1023, 1024, 1999, 2000]
    pieces = [scorer.score(frame.iloc[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for name in scorer.columns:
        np.testing.assert_array_equal(np.concatenate([p[name] for p in pieces]), whole[name], strict=True)


def test_schema_errors_name_the_row_and_the_field(scorer: BatchScorer, frame: pd.DataFrame) -> None:
    bad = frame.copy()
    bad.loc[1234, "bill_length_mm"] = np.inf
    with pytest.raises(SchemaError, match=r"^row 1234, field 'bill_length_mm': expected a finite number") as e:
        scorer.score(bad)
    assert (e.value.row, e.value.field) == (1234, "bill_length_mm")
    with pytest.raises(SchemaError, match="field 'sex': missing column") as e:
        scorer.score(frame.drop(columns=["sex"]))
    assert e.value.field == "sex"
    with pytest.raises(SchemaError, match="expected a batch of columns"):
        scorer.score([{"island": "Dream"}])


def test_an_empty_batch_gives_typed_empty_columns(scorer: BatchScorer, frame: pd.DataFrame) -> None:
    out = scorer.score(frame.iloc[:0])
    assert {k: (len(v), v.dtype) for k, v in out.items()} == {
        "prediction": (0, np.dtype(object)), "proba_Adelie": (0, np.float64),
        "proba_Chinstrap": (0, np.float64), "proba_Gentoo": (0, np.float64)}


def test_regression_and_anomaly_columns(body_mass_bundle: Path, anomaly_bundle: Path, frame: pd.DataFrame) -> None:
    reg = BatchScorer.load(body_mass_bundle)
    assert reg.columns == ("prediction",)
    out = reg.score(frame.head(50))
    assert out["prediction"].dtype == np.float64 and np.isfinite(out["prediction"]).all()
    assert 2000 < float(np.median(out["prediction"])) < 7000  # grams of penguin
    anomaly = BatchScorer.load(anomaly_bundle)
    assert anomaly.columns == ("prediction", "score")
    out = anomaly.score(frame.head(50))
    assert out["prediction"].dtype == np.int64 and set(out["prediction"]) <= {-1, 1}
    # sklearn's convention: negative score <=> outlier
    np.testing.assert_array_equal(out["score"] < 0, out["prediction"] == -1)


# -- the model as bytes: hashes, the per-process cache ------------------------------

def test_model_bytes_are_checked_where_they_arrive(penguins_bundle: Path) -> None:
    payload = ModelBytes.read(penguins_bundle)
    assert payload.name == "penguins" and payload.version == "1.0.0"
    assert "model_bytes" not in repr(payload)  # the model never lands in a log line
    travelled = pickle.loads(pickle.dumps(payload))
    travelled.check()
    flipped = bytearray(payload.model_bytes)
    flipped[len(flipped) // 2] ^= 0xFF
    damaged = ModelBytes(bytes(flipped), payload.sha256, payload.schema, payload.source)
    with pytest.raises(BundleError, match="corrupted on the way"):
        damaged.check()
    with pytest.raises(BundleError, match="corrupted on the way"):
        scorer_for(damaged)


def test_a_tampered_bundle_is_refused(penguins_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(penguins_bundle, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-10] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.onnx does not match its manifest"):
        ModelBytes.read(copy)


def test_one_scorer_per_process(penguins_bundle: Path) -> None:
    payload = ModelBytes.read(penguins_bundle)
    first = scorer_for(payload)
    assert scorer_for(ModelBytes.read(penguins_bundle)) is first
    assert installed_scorer(payload.key) is first
    forget_scorer(payload.key)
    with pytest.raises(BundleError, match="not installed in this process"):
        installed_scorer(payload.key)
    assert scorer_for(payload) is not first


def test_schema_error_keeps_row_and_field_across_processes() -> None:
    err = pickle.loads(pickle.dumps(SchemaError("f.parquet: row 7, field 'x': bad", row=7, field="x")))
    assert (str(err), err.row, err.field) == ("f.parquet: row 7, field 'x': bad", 7, "x")


# -- files --------------------------------------------------------------------------

def _parquet(df: pd.DataFrame, path: Path, **kw: object) -> Path:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, **kw)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_score_file_keeps_row_order_and_the_id(fmt: str, scorer: BatchScorer, frame: pd.DataFrame,
                                              tmp_path: Path) -> None:
    src = tmp_path / f"rows.{fmt}"
    if fmt == "csv":
        frame.to_csv(src, index=False)
    elif fmt == "jsonl":
        frame.astype(object).where(frame.notna(), None).to_json(src, orient="records", lines=True)
    else:
        _parquet(frame, src, row_group_size=300)
    dest = tmp_path / "out" / f"pred.{fmt}"
    dest.parent.mkdir()
    # chunks of 700 rows: the output must not show where one chunk ended
    assert score_file(scorer, src, dest, fmt, ("id",), batch_rows=700) == len(frame)
    if fmt == "csv":
        got = pd.read_csv(dest)
    elif fmt == "jsonl":
        got = pd.DataFrame([json.loads(line) for line in dest.read_text().splitlines()])  # read_json rounds
    else:
        got = pq.read_table(dest).to_pandas()
    expected = scorer.score(frame)
    assert list(got.columns) == ["id", *scorer.columns]
    assert got["id"].tolist() == frame["id"].tolist()
    assert got["prediction"].tolist() == expected["prediction"].tolist()
    for c in scorer.columns[1:]:
        # CSV and JSON write floats as repr: they come back to the same bits
        np.testing.assert_array_equal(got[c].to_numpy(), expected[c])
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no .partial beside it


def test_a_bad_row_in_a_later_chunk_names_the_file_row_and_field(scorer: BatchScorer, frame: pd.DataFrame,
                                                                 tmp_path: Path) -> None:
    bad = frame.astype({"year": "float64"})  # an integer feature, stored as float in this file
    bad.loc[1500, "year"] = 2007.5
    src = _parquet(bad, tmp_path / "part-0007.parquet", row_group_size=256)
    dest = tmp_path / "out.parquet"
    with pytest.raises(SchemaError) as e:
        score_file(scorer, src, dest, "parquet", batch_rows=512)  # row 1500 is row 476 of the 3rd chunk
    assert str(e.value).startswith(f"{src}: row 1500, field 'year': expected a whole number, got 2007.5")
    assert (e.value.row, e.value.field) == (1500, "year")
    assert list(tmp_path.iterdir()) == [src]  # neither the output nor its .partial

    csv_src = tmp_path / "rows.csv"
    frame.head(30).assign(bill_depth_mm=["18.1"] * 29 + ["deep"]).to_csv(csv_src, index=False)
    with pytest.raises(SchemaError, match=rf"^{csv_src}: row 29, field 'bill_depth_mm': expected a number, got 'deep'"):
        score_file(scorer, csv_src, tmp_path / "x.csv", "csv", batch_rows=8)


def test_an_unreadable_file_is_named(scorer: BatchScorer, tmp_path: Path) -> None:
    src = tmp_path / "broken.parquet"
    src.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=rf"^{src}: cannot be read as parquet"):
        score_file(scorer, src, tmp_path / "out.parquet", "parquet")


def test_an_empty_file_gives_an_empty_output_with_its_columns(scorer: BatchScorer, frame: pd.DataFrame,
                                                               tmp_path: Path) -> None:
    src = _parquet(frame.iloc[:0], tmp_path / "empty.parquet")
    assert score_file(scorer, src, tmp_path / "out.parquet", "parquet", ("id",)) == 0
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.num_rows == 0 and out.column_names == ["id", *scorer.columns]
    assert out.schema.field("id").type == pa.int64()


def test_find_inputs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("part-2.parquet", "part-10.parquet", "part-1.parquet", "_SUCCESS", ".hidden.parquet", "notes.txt"):
        (data / name).write_text("x")
    (data / "sub").mkdir()
    assert [p.name for p in find_inputs(data)] == ["part-1.parquet", "part-10.parquet", "part-2.parquet"]
    assert [p.name for p in find_inputs(f"{data}/part-1*.parquet")] == ["part-1.parquet", "part-10.parquet"]
    assert find_inputs(data / "part-2.parquet") == [data / "part-2.parquet"]
    with pytest.raises(FileNotFoundError, match="no files match"):
        find_inputs(f"{data}/*.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_inputs(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unsupported format '.txt'"):
        find_inputs(data / "notes.txt")


def test_plan_outputs(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "x.parquet", tmp_path / "b" / "x.parquet"
    with pytest.raises(FileExistsError, match="would both write"):
        plan_outputs([a, b], tmp_path / "out")
    (tmp_path / "in.csv").write_text("x\n1\n")
    with pytest.raises(FileExistsError, match="would overwrite the input"):
        plan_outputs([tmp_path / "in.csv"], tmp_path)
    with pytest.raises(NotADirectoryError, match="is a file, but 2 inputs need a directory"):
        plan_outputs([a, tmp_path / "y.csv"], tmp_path / "in.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # nothing made on the way
    one = plan_outputs([tmp_path / "rows.csv"], tmp_path / "new" / "pred.parquet")
    assert [(j.dest.name, j.fmt) for j in one.jobs] == [("pred.parquet", "parquet")]
    one.abort()
    assert not (tmp_path / "new").exists()  # the directory it made for the output is gone again
    many = plan_outputs([a, tmp_path / "y.csv"], tmp_path / "out")
    assert [(j.dest, j.fmt) for j in many.jobs] == [(tmp_path / "out" / "x.parquet", "parquet"),
                                                   (tmp_path / "out" / "y.csv", "csv")]
    assert all(j.staged.parent == many.staging for j in many.jobs)
    many.abort()


def test_column_writer_is_all_or_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), ColumnWriter(dest, "csv") as w:
        w.write({"a": [1, 2]})
        raise RuntimeError("the job failed")
    assert list(tmp_path.iterdir()) == []
    with ColumnWriter(dest, "csv") as w:
        w.write({"a": [1, 2]})
        w.write({"a": [3]})
    assert list(csv.reader(dest.read_text().splitlines())) == [["a"], ["1"], ["2"], ["3"]]


# -- the CLI, with the runtime alone ------------------------------------------------

def _predict(*args: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    # ``blocked`` modules are made unimportable, as on a runtime-only install
    code = ("import sys\n"
            f"for m in {blocked!r}: sys.modules[m] = None\n"
            "from skedge.runtime.__main__ import main\n"
            f"rc = main(['predict', *{list(args)!r}])\n"
            f"bad = [m for m in ('pandas', 'pyarrow', 'dask', 'distributed') if sys.modules.get(m) is not None]\n"
            f"assert not bad or not {blocked!r}, bad\n"
            "sys.exit(rc)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


def test_runtime_only_cli_scores_csv_and_names_pyarrow_for_parquet(penguins_bundle: Path, frame: pd.DataFrame,
                                                                    tmp_path: Path) -> None:
    blocked = ("pandas", "pyarrow", "dask", "distributed")
    (tmp_path / "in").mkdir()
    frame.head(100).to_csv(tmp_path / "in" / "a.csv", index=False)
    frame.iloc[100:250].to_csv(tmp_path / "in" / "b.csv", index=False)
    res = _predict(str(penguins_bundle), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                   "--keep", "id", blocked=blocked)
    assert res.returncode == 0, res.stderr
    assert "wrote 250 predictions for 2 files" in res.stderr
    b = list(csv.DictReader((tmp_path / "out" / "b.csv").read_text().splitlines()))
    assert [int(r["id"]) for r in b] == frame["id"].iloc[100:250].tolist()
    res = _predict(str(penguins_bundle), "--input", str(tmp_path / "in" / "b.csv"), "--keep", "id", blocked=blocked)
    assert res.returncode == 0, res.stderr
    assert res.stdout == (tmp_path / "out" / "b.csv").read_text()  # no --output: the same CSV on stdout

    _parquet(frame.head(10), tmp_path / "rows.parquet")
    res = _predict(str(penguins_bundle), "--input", str(tmp_path / "rows.parquet"), "--output",
                   str(tmp_path / "p"), blocked=blocked)
    assert res.returncode == 1
    assert res.stderr.strip() == ("error: reading and writing Parquet needs pyarrow: pip install pyarrow "
                                  "(or pip install 'skedge[dask]')")
    res = _predict(str(penguins_bundle), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "d"),
                   "--engine", "dask", blocked=blocked)
    assert res.returncode == 1
    assert "pip install 'skedge[dask]'" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "p").exists() and not (tmp_path / "d").exists()


def test_usage_errors(penguins_bundle: Path, frame: pd.DataFrame, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("a.csv", "b.csv"):
        frame.head(5).to_csv(tmp_path / "in" / name, index=False)
    res = _predict(str(penguins_bundle), "--input", str(tmp_path / "in"))
    assert res.returncode == 2 and "give --output DIR" in res.stderr
    res = _predict(str(penguins_bundle), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                   "--workers", "2")
    assert res.returncode == 2 and "go with --engine dask" in res.stderr
    res = _predict(str(penguins_bundle), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"),
                   "--keep", "prediction")
    assert res.returncode == 1 and "has the name of an output column" in res.stderr
    assert not (tmp_path / "o").exists()


def test_importing_the_runtime_imports_no_dataframe_library() -> None:
    code = ("import sys, skedge.runtime\n"
            "print(sorted(m for m in ('pandas', 'pyarrow', 'dask', 'distributed') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_csv_with_a_byte_order_mark_and_blank_lines(scorer: BatchScorer, frame: pd.DataFrame, tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a BOM; editors leave blank lines: neither is a column or a row."""
    rows = frame.head(3)
    src = tmp_path / "excel.csv"
    src.write_bytes(b"\xef\xbb\xbf" + rows.to_csv(index=False).encode() + b"\n\n")
    dest = tmp_path / "pred.csv"
    assert score_file(scorer, src, dest, "csv", ("id",)) == 3
    got = pd.read_csv(dest)
    assert got["id"].tolist() == rows["id"].tolist()
    assert got["prediction"].tolist() == scorer.score(rows)["prediction"].tolist()


def test_output_names_and_separators_that_are_not_ours(scorer: BatchScorer, frame: pd.DataFrame,
                                                       tmp_path: Path) -> None:
    src = tmp_path / "rows.csv"
    frame.head(3).to_csv(src, index=False, sep=";")
    with pytest.raises(SchemaError, match="the header looks separated by ';': skedge reads comma-separated CSV"):
        score_file(scorer, src, tmp_path / "p.csv", "csv", ())
    with pytest.raises(DataError, match=r"unknown output format '.txt'"):
        plan_outputs([src], tmp_path / "pred.txt")
    assert not (tmp_path / "pred.txt").exists()
