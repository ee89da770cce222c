"""The database path against what the hostile trial sent it: `skedge runs --promote ""` (taken for no --promote:
the runs were listed with exit 0, as if one had been promoted), and a --keep id past BIGINT (2**70: "unexpected
OverflowError ... a skedge bug" from SQLite's driver)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")


def _rows(bundle: Path, n: int) -> list[dict[str, Any]]:
    rows = json.loads((bundle / "golden.json").read_text())["rows"][:n]
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


def test_promote_of_an_empty_id_is_refused(penguins_bundle: Path, tmp_path: Path) -> None:
    from skedge.runtime.db import list_runs, predict_to_db

    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _rows(penguins_bundle, 5)))
    url = f"sqlite:///{tmp_path / 'p.db'}"
    predict_to_db(penguins_bundle, str(src), url)
    before = [(r.run_id, r.promoted) for r in list_runs(url)]
    cp = subprocess.run([sys.executable, "-m", "skedge.cli", "runs", "--db", url, "--promote", ""],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 1, cp.stdout
    assert cp.stderr.strip() == f"error: no run '' in {url} (skedge runs --db URL lists them)"
    assert [(r.run_id, r.promoted) for r in list_runs(url)] == before


def test_a_keep_id_past_bigint_lands_as_text_or_is_refused_naming_file_and_row(penguins_bundle: Path,
                                                                               tmp_path: Path) -> None:
    import sqlite3

    from skedge.runtime import DataError
    from skedge.runtime.db import predict_to_db

    rows = _rows(penguins_bundle, 6)
    big = 2**70  # a CSV id no BIGINT holds
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("".join(json.dumps({**r, "id": big + i}) + "\n"
                                                     for i, r in enumerate(rows[:3])))
    url = f"sqlite:///{tmp_path / 'a.db'}"
    predict_to_db(penguins_bundle, str(tmp_path / "in" / "a.jsonl"), url, keep=["id"])
    with sqlite3.connect(tmp_path / "a.db") as conn:
        got = conn.execute("SELECT id, typeof(id) FROM predictions ORDER BY input_row").fetchall()
    assert got == [(str(big + i), "text") for i in range(3)]  # every digit kept, as text

    # the first file's ids are BIGINTs: a later file's id past the range is refused naming its file and row
    (tmp_path / "in2").mkdir()
    (tmp_path / "in2" / "a.jsonl").write_text("".join(json.dumps({**r, "id": i}) + "\n" for i, r in enumerate(rows)))
    (tmp_path / "in2" / "b.jsonl").write_text("".join(json.dumps({**r, "id": big if i == 4 else i}) + "\n"
                                                      for i, r in enumerate(rows)))
    with pytest.raises(DataError, match=r"b\.jsonl: row 4, --keep column 'id': value '1180591620717411303424' is "
                                        "not a whole number in BIGINT range"):
        predict_to_db(penguins_bundle, str(tmp_path / "in2"), f"sqlite:///{tmp_path / 'b.db'}", keep=["id"])
