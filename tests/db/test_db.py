"""Predictions into a database, the same suite against SQLite and a real PostgreSQL server.

The reference is the runtime's own BatchScorer on each input file (the answer the file outputs give,
proven against sklearn elsewhere): what lands must be those values, row for row, floats bit for bit.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from skedge.runtime import BatchScorer, DataError, GateError, SchemaError
from skedge.runtime.db import list_runs, predict_to_db, promote_run, repair_runs

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PENGUINS = ROOT / "examples" / "penguins.csv"
PROBA = ["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]


def write_dataset(path: Path, files: int, rows: int, seed: int, fmt: str = "parquet") -> Path:
    """Jittered penguins with a whole-number id (BIGINT when landed), some missing values."""
    rng = np.random.default_rng(seed)
    src = pd.read_csv(PENGUINS)
    path.mkdir(parents=True)
    for i in range(files):
        df = src.iloc[rng.integers(0, len(src), rows)].reset_index(drop=True)
        for c in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
            df[c] = (df[c] * (1 + rng.normal(0, 0.02, rows))).round(3)
        df.loc[rng.random(rows) < 0.02, "sex"] = None
        df.insert(0, "id", np.arange(rows, dtype=np.int64) + i * 1_000_000 + 10**12)  # past 32 bits
        if fmt == "csv":
            df.to_csv(path / f"part-{i:04d}.csv", index=False)
        else:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path / f"part-{i:04d}.parquet")
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("db") / "data", files=3, rows=1_500, seed=1)


def engine(url: str) -> Any:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def fetch(url: str, sql: str, **params: Any) -> list[Any]:
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())
    finally:
        eng.dispose()


def count(url: str, table: str) -> int:
    return int(fetch(url, f"SELECT count(*) FROM {table}")[0][0])


def expected(bundle: Path, data: Path) -> pd.DataFrame:
    """The runtime's predictions of every input file, in file and row order, with the input's id."""
    scorer = BatchScorer.load(bundle)
    frames = []
    for f in sorted(data.iterdir()):
        rows = pq.read_table(f).to_pandas() if f.suffix == ".parquet" else pd.read_csv(f)
        out = pd.DataFrame(scorer.score(pq.read_table(f) if f.suffix == ".parquet" else rows))
        out.insert(0, "id", rows["id"].to_numpy())
        out.insert(0, "input_file", str(f.absolute()))
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


def landed(url: str, table: str, run_id: str | None = None) -> pd.DataFrame:
    where = "" if run_id is None else " WHERE run_id = :r"
    eng = engine(url)
    try:
        with eng.connect() as conn:
            res = conn.execute(sa.text(f"SELECT * FROM {table}{where} ORDER BY input_file, input_row"),
                               {"r": run_id})
            return pd.DataFrame(res.all(), columns=list(res.keys()))
    finally:
        eng.dispose()


def assert_same_predictions(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    assert got["input_file"].tolist() == want["input_file"].tolist()
    assert got["id"].tolist() == want["id"].tolist()
    assert all(type(v) is int for v in got["id"])  # an integer from the database, not a float or text
    assert got["prediction"].tolist() == want["prediction"].tolist()
    for c in [c for c in want.columns if c.startswith("proba_") or c == "score"]:
        a = np.asarray(got[c].to_numpy(), dtype=np.float64)
        b = np.asarray(want[c].to_numpy(), dtype=np.float64)
        np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64), err_msg=c)


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return subprocess.run([str(BIN / "skedge"), *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=timeout)


# -- what lands ----------------------------------------------------------------------------------

def test_rows_land_with_their_types_and_the_runtimes_values(db_url: str, penguins_bundle: Path,
                                                            dataset: Path) -> None:
    res = cli("predict", str(penguins_bundle), "--input", str(dataset), "--output", db_url, "--keep", "id")
    assert res.returncode == 0, res.stderr
    assert "landed 4,500 predictions for 3 files in table predictions" in res.stderr
    want = expected(penguins_bundle, dataset)
    got = landed(db_url, "predictions")
    assert_same_predictions(got, want)
    assert got["input_row"].tolist() == [i for _ in range(3) for i in range(1_500)]
    # not the model against itself: the species was never given to the model
    truth = pd.concat([pq.read_table(f, columns=["species"]).to_pandas() for f in sorted(dataset.iterdir())])
    assert np.mean(truth["species"].to_numpy() == got["prediction"].to_numpy()) > 0.9
    eng = engine(db_url)
    with eng.connect() as conn:
        types = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns("predictions")}
    eng.dispose()
    assert list(types) == ["id", "prediction", *PROBA, "run_id", "model_name", "model_version", "input_file",
                           "input_row"]
    assert isinstance(types["id"], sa.BigInteger) and isinstance(types["input_row"], sa.BigInteger)
    assert all(isinstance(types[c], sa.Float) for c in PROBA)
    (run,) = list_runs(db_url)
    assert (run.status, run.rows_in, run.rows_out, run.model_name, run.model_version) == (
        "succeeded", 4_500, 4_500, "penguins", "1.0.0")
    assert set(got["run_id"]) == {run.run_id} and set(got["model_version"]) == {"1.0.0"}
    assert [i["sha256"] for i in run.inputs] == [hashlib.sha256(f.read_bytes()).hexdigest()
                                                 for f in sorted(dataset.iterdir())]
    assert [i["rows"] for i in run.inputs] == [1_500] * 3
    assert run.current and run.pid is not None and run.host and run.started_at <= run.finished_at
    assert_same_predictions(landed(db_url, "predictions_current"), want)  # no promotion yet: the latest run


def test_csv_ids_land_as_integers_and_regression_anomaly_columns(db_url: str, body_mass_bundle: Path,
                                                                 anomaly_bundle: Path, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "csv", files=1, rows=400, seed=4, fmt="csv")
    run = predict_to_db(body_mass_bundle, data, db_url, table="mass", keep=["id"])
    got = landed(db_url, "mass")
    want = BatchScorer.load(body_mass_bundle).score(pd.read_csv(data / "part-0000.csv"))
    assert got["id"].tolist() == pd.read_csv(data / "part-0000.csv")["id"].tolist()  # CSV text -> BIGINT
    assert all(type(v) is int for v in got["id"])
    np.testing.assert_array_equal(got["prediction"].to_numpy(dtype=np.float64).view(np.int64),
                                  want["prediction"].view(np.int64))
    assert run.rows_out == 400
    predict_to_db(anomaly_bundle, data, db_url, table="odd", keep=["id"])
    got = landed(db_url, "odd")
    want = BatchScorer.load(anomaly_bundle).score(pd.read_csv(data / "part-0000.csv"))
    assert [c for c in got.columns if c not in ("id",)][:2] == ["prediction", "score"]
    assert got["prediction"].tolist() == want["prediction"].tolist()
    np.testing.assert_array_equal(got["score"].to_numpy(dtype=np.float64).view(np.int64), want["score"].view(np.int64))


# -- re-runs, versions, promotion ---------------------------------------------------------------------

def test_a_rerun_replaces_its_rows(db_url: str, penguins_bundle: Path, dataset: Path) -> None:
    first = predict_to_db(penguins_bundle, dataset, db_url, keep=["id"])
    second = predict_to_db(penguins_bundle, dataset, db_url, keep=["id"])
    assert first.run_key == second.run_key and first.run_id != second.run_id
    assert count(db_url, "predictions") == 4_500  # not 9,000
    assert fetch(db_url, "SELECT DISTINCT run_id FROM predictions") == [(second.run_id,)]
    assert [(r.run_id, r.status) for r in list_runs(db_url)] == [(first.run_id, "replaced"),
                                                                 (second.run_id, "succeeded")]
    assert_same_predictions(landed(db_url, "predictions"), expected(penguins_bundle, dataset))
    # other input is another run beside it, not a replacement
    part = sorted(dataset.iterdir())[:1]
    third = predict_to_db(penguins_bundle, part, db_url, keep=["id"])
    assert third.run_key != second.run_key
    assert count(db_url, "predictions") == 6_000


def test_two_versions_side_by_side_and_promotion_switches_the_view(db_url: str, penguins_bundle: Path,
                                                                    penguins_v2_bundle: Path, dataset: Path) -> None:
    v1 = predict_to_db(penguins_bundle, dataset, db_url, keep=["id"])
    v2 = predict_to_db(penguins_v2_bundle, dataset, db_url, keep=["id"])
    assert (v1.model_version, v2.model_version) == ("1.0.0", "2.0.0")
    assert count(db_url, "predictions") == 9_000
    want1, want2 = expected(penguins_bundle, dataset), expected(penguins_v2_bundle, dataset)
    assert not np.array_equal(want1["proba_Adelie"], want2["proba_Adelie"])  # two different models
    assert_same_predictions(landed(db_url, "predictions", v1.run_id), want1)
    assert_same_predictions(landed(db_url, "predictions", v2.run_id), want2)
    assert_same_predictions(landed(db_url, "predictions_current"), want2)  # the latest, until one is promoted

    res = cli("runs", "--db", db_url, "--promote", v1.run_id)
    assert res.returncode == 0, res.stderr
    assert f"promoted run {v1.run_id}: predictions_current shows its 4,500 rows" in res.stdout
    assert_same_predictions(landed(db_url, "predictions_current"), want1)
    # a re-run of the promoted run keeps it promoted; a newer version does not take over the view
    again = predict_to_db(penguins_bundle, dataset, db_url, keep=["id"])
    assert again.promoted and again.current
    assert_same_predictions(landed(db_url, "predictions_current"), want1)
    promote_run(db_url, v2.run_id)  # roll forward again
    assert_same_predictions(landed(db_url, "predictions_current"), want2)
    with pytest.raises(GateError, match="replaced: only a succeeded run can be promoted"):
        promote_run(db_url, v1.run_id)
    with pytest.raises(DataError, match="no run 'nope'"):
        promote_run(db_url, "nope")


# -- all or nothing ------------------------------------------------------------------------------------

def test_a_bad_row_fails_the_run_and_lands_nothing(db_url: str, penguins_bundle: Path, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", files=3, rows=500, seed=5)
    bad = pq.read_table(data / "part-0002.parquet").to_pandas()
    bad.loc[77, "flipper_length_mm"] = np.inf
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), data / "part-0002.parquet")
    res = cli("predict", str(penguins_bundle), "--input", str(data), "--output", db_url, "--keep", "id")
    assert res.returncode == 1
    assert res.stderr.splitlines() == [f"error: {data / 'part-0002.parquet'}: row 77, field 'flipper_length_mm': "
                                       "expected a finite number, got inf (float)"]
    assert count(db_url, "predictions") == 0 and count(db_url, "predictions_staging") == 0  # files 0, 1 dropped
    assert count(db_url, "predictions_current") == 0
    (run,) = list_runs(db_url)
    assert run.status == run.stored_status == "failed" and "row 77" in (run.error or "")


KILL_AFTER_FIRST_PARTITION = """
import os, signal, subprocess, sys, time
import sqlalchemy as sa
skedge, bundle, data, url = sys.argv[1:5]
proc = subprocess.Popen([skedge, "predict", bundle, "--input", data, "--output", url, "--keep", "id"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
staged, deadline = 0, time.monotonic() + 120
while time.monotonic() < deadline and proc.poll() is None:
    try:
        with eng.connect() as conn:
            staged = conn.execute(sa.text("SELECT count(*) FROM predictions_staging")).scalar_one()
    except sa.exc.DBAPIError:
        staged = 0  # not created yet
    if staged:
        os.kill(proc.pid, signal.SIGKILL)
        break
    time.sleep(0.005)
proc.wait()
print(proc.returncode, staged)
"""


def test_a_run_killed_midway(db_url: str, penguins_bundle: Path, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", files=6, rows=20_000, seed=6)
    res = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_PARTITION, str(BIN / "skedge"),
                          str(penguins_bundle), str(data), db_url], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    code, staged = map(int, res.stdout.split())
    assert code == -signal.SIGKILL  # killed mid-way...
    assert 20_000 <= staged < 120_000  # ...after at least one partition was staged, before the last
    assert count(db_url, "predictions") == 0 and count(db_url, "predictions_current") == 0
    (run,) = list_runs(db_url)
    assert (run.status, run.stored_status, run.abandoned) == ("failed", "running", True)
    shown = cli("runs", "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    assert f"{run.run_id}  predictions  penguins 1.0.0  failed (dead process: --repair)" in shown.stdout

    repaired = cli("runs", "--db", db_url, "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert f"repaired 1 run(s) left running by a dead process: {run.run_id}" in repaired.stdout
    deadline = time.monotonic() + 30  # PostgreSQL: the dead client's open transaction is rolled back, too
    while count(db_url, "predictions_staging") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count(db_url, "predictions_staging") == 0
    (run,) = list_runs(db_url)
    assert (run.status, run.stored_status, run.abandoned) == ("failed", "failed", False)
    assert repair_runs(db_url) == []  # nothing left to repair
    # and the next run lands in full
    done = predict_to_db(penguins_bundle, data, db_url, keep=["id"])
    assert count(db_url, "predictions") == done.rows_out == 120_000


# -- Dask ------------------------------------------------------------------------------------------

def test_dask_with_two_workers_lands_the_same_rows(db_url: str, penguins_bundle: Path, dataset: Path) -> None:
    res = cli("predict", str(penguins_bundle), "--input", str(dataset), "--output", db_url, "--keep", "id",
              "--engine", "dask", "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert "landed 4,500 predictions for 3 files" in res.stderr and "engine dask" in res.stderr
    assert_same_predictions(landed(db_url, "predictions"), expected(penguins_bundle, dataset))
    (run,) = list_runs(db_url)
    assert (run.status, run.engine, run.rows_out) == ("succeeded", "dask", 4_500)
    assert count(db_url, "predictions_staging") == 0


# -- names ------------------------------------------------------------------------------------------

HOSTILE_TABLES = ["x; DROP TABLE prediction_runs; --", 'p"; DROP TABLE prediction_runs; --', "Predictions",
                  "prediction_runs", "p_staging", "p_current", "", "a" * 41, "1abc", "pg_catalog"]


def test_hostile_names_are_refused(db_url: str, penguins_bundle: Path, dataset: Path, tmp_path: Path) -> None:
    predict_to_db(penguins_bundle, dataset, db_url, keep=["id"])  # something that must survive
    for name in HOSTILE_TABLES:
        with pytest.raises(DataError, match=r"--table .*: (a table name is|the name is reserved)"):
            predict_to_db(penguins_bundle, dataset, db_url, table=name)
    res = cli("predict", str(penguins_bundle), "--input", str(dataset), "--output", db_url, "--table",
              HOSTILE_TABLES[0])
    assert res.returncode == 1 and len(res.stderr.splitlines()) == 1
    assert res.stderr.startswith("error: --table 'x; DROP TABLE prediction_runs; --': a table name is")
    # a column of the input with a hostile name, carried with --keep
    evil = 'id"); DROP TABLE prediction_runs; --'
    frame = pq.read_table(sorted(dataset.iterdir())[0]).to_pandas().rename(columns={"id": evil})
    (tmp_path / "evil").mkdir()
    frame.to_csv(tmp_path / "evil" / "rows.csv", index=False)
    with pytest.raises(DataError, match="a column landed in a database is named with letters"):
        predict_to_db(penguins_bundle, tmp_path / "evil", db_url, table="evil", keep=[evil])
    with pytest.raises(SchemaError, match="has the name of an output column"):
        predict_to_db(penguins_bundle, dataset, db_url, table="clash", keep=["prediction"])
    with pytest.raises(DataError, match="would land twice"):
        predict_to_db(penguins_bundle, dataset, db_url, table="clash", keep=["run_id"])
    # nothing was created or dropped by any of it
    eng = engine(db_url)
    with eng.connect() as conn:
        tables = sorted(sa.inspect(conn).get_table_names())
    eng.dispose()
    assert tables == ["prediction_runs", "predictions", "predictions_staging"]
    assert count(db_url, "predictions") == 4_500 and len(list_runs(db_url)) == 1


def test_values_are_bound_not_spliced(db_url: str, penguins_bundle: Path, tmp_path: Path) -> None:
    # a text id full of SQL lands as the text it is
    data = tmp_path / "data"
    data.mkdir()
    frame = pd.read_csv(PENGUINS).head(50)
    frame.insert(0, "id", [f"'); DROP TABLE prediction_runs; -- {i}" for i in range(50)])
    frame.to_csv(data / "rows.csv", index=False)
    predict_to_db(penguins_bundle, data, db_url, table="texty", keep=["id"])
    got = landed(db_url, "texty")
    assert got["id"].tolist() == frame["id"].tolist()
    assert len(list_runs(db_url)) == 1


def test_the_runtime_does_not_import_sqlalchemy() -> None:
    code = ("import sys, skedge.runtime, skedge.runtime.db, skedge.runtime._predict_cli\n"
            "print(sorted(m for m in ('sqlalchemy', 'psycopg') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_without_sqlalchemy_the_error_names_the_extra(penguins_bundle: Path, dataset: Path, tmp_path: Path) -> None:
    code = ("import sys\nsys.modules['sqlalchemy'] = None\nfrom skedge.cli import main\n"
            f"sys.exit(main(['predict', {str(penguins_bundle)!r}, '--input', {str(dataset)!r}, '--output', "
            f"'sqlite:///{tmp_path}/x.db']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 1
    assert res.stderr.strip() == ("error: writing predictions to a database needs SQLAlchemy: "
                                  "pip install 'skedge[db]'")
    assert not (tmp_path / "x.db").exists()


def test_runs_of_a_missing_sqlite_file_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    res = cli("runs", "--db", f"sqlite:///{tmp_path / 'typo.db'}")
    assert res.returncode == 1
    assert res.stderr.splitlines() == [f"error: {tmp_path / 'typo.db'}: no such database file (skedge predict "
                                       f"--output sqlite:///{tmp_path / 'typo.db'} makes it)"]
    assert list(tmp_path.iterdir()) == []


def test_a_partition_written_twice_is_staged_once(db_url: str, penguins_bundle: Path, dataset: Path) -> None:
    # what a Dask task that runs again (its worker died after writing) does: delete-then-insert in one transaction
    from skedge.runtime.db import Target, _normalize_url, stage_file

    predict_to_db(penguins_bundle, dataset, db_url, keep=["id"])  # creates the tables
    scorer = BatchScorer.load(penguins_bundle)
    columns = (("id", "int"), ("prediction", "text"), *((c, "float") for c in PROBA))
    target = Target(_normalize_url(db_url), "predictions", "r" * 16, "penguins", "1.0.0", columns, ("id",))
    src = sorted(dataset.iterdir())[1].absolute()
    assert stage_file(scorer, target, src) == stage_file(scorer, target, src) == 1_500
    assert fetch(db_url, "SELECT count(*), count(DISTINCT input_row) FROM predictions_staging "
                         "WHERE run_id = :r", r="r" * 16) == [(1_500, 1_500)]
    assert count(db_url, "predictions") == 4_500  # staging is not visible
    assert repair_runs(db_url) == [] and count(db_url, "predictions_staging") == 0  # no live run owns it


def test_boolean_classes_land_as_their_text(db_url: str, tmp_path: Path) -> None:
    # a True/False target used to land as '1'/'0' in a TEXT column (SQLite) beside proba_True / proba_False
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    from skedge.exporter import export

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=80), "z": rng.normal(size=80)})
    pipe = Pipeline([("m", DecisionTreeClassifier(max_depth=2, random_state=0))]).fit(df, (df.x > 0).to_numpy())
    bundle = export(pipe, df, tmp_path / "models", name="flag", version="1.0.0", targets=["onnx"])
    df.to_csv(tmp_path / "rows.csv", index=False)
    predict_to_db(bundle, [tmp_path / "rows.csv"], db_url, table="flags")
    got = [r[0] for r in fetch(db_url, "SELECT prediction FROM flags ORDER BY input_row")]
    assert got == [str(v) for v in pipe.predict(df)]
    assert set(got) == {"True", "False"}


def test_a_kept_column_of_another_type_than_the_table_is_refused(db_url: str, body_mass_bundle: Path,
                                                                tmp_path: Path) -> None:
    # a text id into a table whose id is BIGINT used to land on SQLite without a word (its columns accept anything)
    data = write_dataset(tmp_path / "ints", files=1, rows=50, seed=5, fmt="csv")
    predict_to_db(body_mass_bundle, data, db_url, table="mass", keep=["id"])
    text = tmp_path / "text"
    text.mkdir()
    frame = pd.read_csv(data / "part-0000.csv")
    frame["id"] = "x" + frame["id"].astype(str)
    frame.to_csv(text / "part-0000.csv", index=False)
    with pytest.raises(DataError, match="has column 'id' as BIGINT; this run lands text there"):
        predict_to_db(body_mass_bundle, text, db_url, table="mass", keep=["id"])
    assert all(type(v) is int for v in landed(db_url, "mass")["id"])
    assert [r.status for r in list_runs(db_url)] == ["succeeded"]


@pytest.mark.parametrize("url", ["mysql://app@db/preds", "oracle+cx_oracle://u:secret@h/d", "mssql+pyodbc://h/d"])
def test_another_database_is_refused_naming_the_two_it_takes(url: str) -> None:
    # used to say "needs the database driver MySQLdb: pip install 'skedge[db]'", an extra that installs no such driver
    with pytest.raises(DataError, match=r"SQLite \(sqlite:///path.db\) or PostgreSQL") as err:
        list_runs(url)
    assert "secret" not in str(err.value)


def test_an_empty_first_file_does_not_type_the_ids_as_text(db_url: str, body_mass_bundle: Path, tmp_path: Path) -> None:
    # the kept columns were typed from the first file alone: an empty one made the id column TEXT for good
    data = write_dataset(tmp_path / "csv", files=1, rows=30, seed=6, fmt="csv")
    header = (data / "part-0000.csv").read_text().splitlines()[0]
    (data / "aaa-empty.csv").write_text(header + "\n")
    predict_to_db(body_mass_bundle, data, db_url, table="mass", keep=["id"])
    ids = landed(db_url, "mass")["id"].tolist()
    assert ids == pd.read_csv(data / "part-0000.csv")["id"].tolist() and all(type(v) is int for v in ids)


def test_classes_that_differ_only_in_case_are_refused_naming_them(tmp_path: Path) -> None:
    # classes 'Yes' and 'yes' were refused with "rename the --keep column", with no --keep given
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    from skedge.exporter import export

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=90), "z": rng.normal(size=90)})
    y = np.array(["Yes", "yes", "no"])[np.digitize(df.x, [-0.5, 0.5])]
    pipe = Pipeline([("m", DecisionTreeClassifier(max_depth=3, random_state=0))]).fit(df, y)
    bundle = export(pipe, df, tmp_path / "models", name="case", version="1.0.0", targets=["onnx"])
    df.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(DataError, match="output columns 'proba_Yes' and 'proba_yes' differ only in case"):
        predict_to_db(bundle, [tmp_path / "rows.csv"], f"sqlite:///{tmp_path / 'p.db'}")
    assert not (tmp_path / "p.db").exists()
