"""The house style, checked on every change: ruff's short rule list and mypy on the packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tool", [
    [sys.executable, "-m", "ruff", "check", "."],
    [sys.executable, "-m", "mypy", "runtime", "exporter", "trainer", "cli", "mobile_demo", "registry", "serve"],
], ids=["ruff", "mypy"])
def test_tool_is_clean(tool: list[str]) -> None:
    res = subprocess.run(tool, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
