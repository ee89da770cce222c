"""`skedge monitor` / ``monitor_files`` name a bad cell as `skedge predict` does: the file, and the row counted
from the file's start (the hostile trial found "row 4464" for row 70,000: the row within its 65,536-row chunk)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from skedge.runtime import SchemaError, load
from skedge.runtime.monitor import monitor_files

ROOT = Path(__file__).resolve().parents[2]


def test_a_bad_cell_past_the_first_chunk_is_named_by_file_and_file_row(penguins_bundle: Path,
                                                                       tmp_path: Path) -> None:
    model = load(penguins_bundle)
    df = pd.read_csv(ROOT / "examples" / "penguins.csv")[list(model.schema.names)].dropna()
    big = pd.concat([df] * (70_000 // len(df) + 1), ignore_index=True).iloc[:70_000]
    big["body_mass_g"] = big["body_mass_g"].astype(object)
    big.loc[66_000, "body_mass_g"] = "inf"
    path = tmp_path / "rows.csv"
    big.to_csv(path, index=False)
    with pytest.raises(SchemaError) as err:
        monitor_files(model, str(path))
    assert str(err.value).startswith(f"{path}: row 66000, field 'body_mass_g': expected a finite number, got inf")
    assert (err.value.row, err.value.field) == (66_000, "body_mass_g")
