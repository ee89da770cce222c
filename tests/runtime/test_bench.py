"""The runtime benchmark still runs (a quick pass, nothing written): it checks answers before timing them,
so a bench that rots or times wrong answers fails here. Speed itself is never asserted in a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_runtime_quick_pass() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_runtime.py"), "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    for model in ("penguins (example)", "forest + ColumnTransformer"):
        for measure in ("one row, p50", "one row, p99", "10,000 rows", "fresh process"):
            assert any(line.startswith(f"| {model} | {measure}") for line in table), (model, measure, out.stdout)
    assert any(line.startswith("| all | installed size") for line in table)
