"""Strict files (issue 10.7): a malformed row is refused with one line naming the file, the row and the field,
never scored with its cells shifted, padded or dropped."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skedge.runtime import SchemaError, load
from skedge.runtime._predict_cli import run_predict

FIELDS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year"]
GOOD = ["Biscoe", "47.5", "15.0", "217.0", "5200.0", "male", "2008"]


def _predict(bundle: Path, src: Path, tmp: Path) -> None:
    out = tmp / f"out{src.suffix}"
    args = argparse.Namespace(bundle=str(bundle), input=str(src), output=str(out), keep=[], target="onnx",
                              engine="local", scheduler=None, workers=None)
    run_predict(args)


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(0, 30), width=st.integers(1, 12).filter(lambda w: w != len(FIELDS)))
def test_a_row_with_too_few_or_too_many_cells_names_file_row_and_field(
        penguins_bundle: Path, tmp_path: Path, at: int, width: int) -> None:
    rows = [list(GOOD) for _ in range(31)]
    rows[at] = (GOOD + ["extra"] * 10)[:width]
    src = _csv(tmp_path / "rows.csv", FIELDS, rows)
    with pytest.raises(SchemaError) as info:
        _predict(penguins_bundle, src, tmp_path)
    field = FIELDS[width] if width < len(FIELDS) else FIELDS[-1]
    assert (info.value.row, info.value.field) == (at, field)
    assert str(info.value).startswith(f"{src}: row {at}, field {field!r}: the row has {width} cells, the header 7")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("dup", ["sex", "island", "comment"])
def test_a_repeated_header_name_is_refused(penguins_bundle: Path, tmp_path: Path, dup: str) -> None:
    header = [*FIELDS, dup] if dup in FIELDS else [*FIELDS, dup, dup]
    src = _csv(tmp_path / "rows.csv", header, [GOOD + ["female"] * (len(header) - 7)])
    with pytest.raises(SchemaError) as info:
        _predict(penguins_bundle, src, tmp_path)
    assert str(info.value) == f"{src}: the header (line 1), field {dup!r}: the column is named twice"
    assert info.value.field == dup


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_a_deeply_nested_jsonl_line_is_one_line_naming_the_field(penguins_bundle: Path, tmp_path: Path,
                                                                depth: int) -> None:
    good = dict(zip(FIELDS, ["Biscoe", 47.5, 15.0, 217.0, 5200.0, "male", 2008], strict=True))
    lines = [json.dumps(good)] * 3
    deep = json.dumps({**good, "sex": "@"}).replace('"@"', _deep(depth))
    src = tmp_path / "rows.jsonl"
    src.write_text("\n".join([*lines, deep, *lines]) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError) as info:
        _predict(penguins_bundle, src, tmp_path)
    assert (info.value.row, info.value.field) == (3, "sex")
    assert str(info.value).startswith(f"{src}: row 3, field 'sex': the JSON nests too deeply")
    assert len(str(info.value)) < 300
    # a line that is nothing but nesting names the row
    src.write_text(json.dumps(good) + "\n" + _deep(depth) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"rows\.jsonl: row 1: the JSON nests too deeply"):
        _predict(penguins_bundle, src, tmp_path)


def test_the_cli_says_it_in_one_line(penguins_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    src = _csv(tmp_path / "rows.csv", FIELDS, [GOOD, GOOD[:4]])
    code = main(["predict", str(penguins_bundle), "--input", str(src)])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"{src}: row 1, field 'body_mass_g': the row has 4 cells" in err


# -- dates and durations are not numbers ------------------------------------------------------------------

TIMES: list[Any] = [pd.Timestamp("2020-01-01"), pd.Timedelta(5), np.datetime64("2020-01-01"),
                    np.timedelta64(5, "ns"), pd.NaT, np.datetime64("NaT")]


@pytest.mark.parametrize("value", TIMES, ids=repr)
def test_a_date_or_duration_for_a_number_field_is_refused_in_a_row(penguins_bundle: Path, value: Any) -> None:
    model = load(penguins_bundle)
    row = dict(zip(FIELDS, ["Biscoe", 47.5, 15.0, 217.0, 5200.0, "male", 2008], strict=True))
    for rows in ({**row, "body_mass_g": value}, [row, {**row, "body_mass_g": value}]):
        with pytest.raises(SchemaError) as info:
            model.predict(rows)
        assert info.value.field == "body_mass_g"
        assert str(info.value).startswith(f"row {info.value.row}, field 'body_mass_g': expected a finite number")


@pytest.mark.parametrize("column", [pd.to_datetime(["2020-01-01", "2021-06-01", None]),
                                    pd.to_timedelta([1, 2, None], unit="s")], ids=["datetime", "timedelta"])
def test_a_date_or_duration_column_is_refused_in_a_dataframe(penguins_bundle: Path, column: Any) -> None:
    model = load(penguins_bundle)
    frame = pd.DataFrame([dict(zip(FIELDS, ["Biscoe", 47.5, 15.0, 217.0, 5200.0, "male", 2008], strict=True))] * 3)
    frame["year"] = column
    with pytest.raises(SchemaError, match=r"^row 0, field 'year': expected a whole number, got Timestamp|"
                                          r"^row 0, field 'year': expected a whole number, got Timedelta"):
        model.predict(frame)


def test_a_timestamp_column_in_parquet_is_not_read_as_nanoseconds(penguins_bundle: Path, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    good = dict(zip(FIELDS, ["Biscoe", 47.5, 15.0, 217.0, 5200.0, "male", 2008], strict=True))
    table = pa.table({**{k: [v] * 4 for k, v in good.items()},
                      "body_mass_g": pa.array(np.array(["2020-01-01"] * 4, dtype="datetime64[ns]"))})
    src = tmp_path / "rows.parquet"
    pq.write_table(table, src)
    with pytest.raises(SchemaError) as info:
        _predict(penguins_bundle, src, tmp_path)
    assert str(info.value).startswith(f"{src}: row 0, field 'body_mass_g': expected a finite number, got "
                                      "np.datetime64(")


@pytest.mark.parametrize("cell", ["1_000", "٣", "１２", "१२", "NAN", "+nan", "NaN ", " nan", "nan "])
def test_a_number_cell_pandas_reads_as_text_is_refused(penguins_bundle: Path, tmp_path: Path, cell: str) -> None:
    """Python's float() takes these; pandas.read_csv (how the trainer read the file) keeps them as text."""
    assert pd.read_csv(io.StringIO(f"a\n{cell}\n1\n"), keep_default_na=False,
                       na_values=sorted(__import__("skedge.runtime.missing").runtime.missing.MISSING_TEXT)
                       )["a"].dtype.kind not in "fiu"
    rows = [list(GOOD) for _ in range(5)]
    rows[3][1] = cell
    src = _csv(tmp_path / "rows.csv", FIELDS, rows)
    with pytest.raises(SchemaError) as info:
        _predict(penguins_bundle, src, tmp_path)
    assert (info.value.row, info.value.field) == (3, "bill_length_mm")
    assert f"expected a number, got {cell!r}" in str(info.value)


def test_a_jsonl_row_naming_a_field_twice_is_refused(penguins_bundle: Path, tmp_path: Path) -> None:
    row = dict(zip(FIELDS, GOOD, strict=True))
    good = json.dumps({k: (v if k in ("island", "sex") else float(v)) for k, v in row.items()})
    twice = good[:-1] + ', "bill_length_mm": 99.0}'
    src = tmp_path / "rows.jsonl"
    src.write_text(good + "\n" + twice + "\n", encoding="utf-8")
    with pytest.raises(SchemaError) as info:
        _predict(penguins_bundle, src, tmp_path)
    assert (info.value.row, info.value.field) == (1, "bill_length_mm")
    assert "named twice" in str(info.value)
