"""`predict --output` with a URL skedge does not write to is refused (the hostile trial: `--output
mysql://app:pw@host/db` wrote the folders mysql:/app:pw@host/db here and said "wrote 400 predictions to
mysql://app:pw@host/db")."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("url", ["mysql://app:hunter2@db/preds", "s3://bucket/preds/"])
def test_an_output_url_of_another_scheme_is_refused_and_nothing_is_written(penguins_bundle: Path, tmp_path: Path,
                                                                           url: str) -> None:
    shutil.copy(ROOT / "examples" / "penguins.csv", tmp_path / "rows.csv")
    cp = subprocess.run([sys.executable, "-m", "skedge.runtime", "predict", str(penguins_bundle), "--input",
                         "rows.csv", "--output", url], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    scheme = url.split(":")[0]
    assert cp.returncode == 2, cp.stderr
    assert cp.stderr.splitlines()[-1].endswith(f"error: --output {scheme}://...: not a database skedge writes to "
                                               "(sqlite:///path.db, postgresql://user@host/db) nor a folder")
    assert "hunter2" not in cp.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]
