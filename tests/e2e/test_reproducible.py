"""Training the same config on the same data twice gives the same bundle, byte for byte, in every file
(issue 10.11), and no file names a path of the machine it was made on.

Two processes with different hash seeds, output folders and working directories, so that nothing that
varies between runs (set order, a scratch folder's name, where the user stands) can reach a file.
The manifest holds no creation time: a bundle's identity (the sha256 of its manifest) is a function of
config, data and library versions only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _train(config: Path, out: Path, cwd: Path, seed: str) -> Path:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    env.pop("SOURCE_DATE_EPOCH", None)
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "skedge.cli", "train", str(config), "--out", str(out)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # a line per export stage, also when stderr is not a terminal (a 2,000-tree export is minutes long)
    assert "convert to ONNX (RandomForestClassifier, 100 trees)" in proc.stderr, proc.stderr
    assert "check ONNX parity" in proc.stderr and "convert to ORT format" in proc.stderr
    return out / "penguins" / "1.0.0"


def test_training_twice_gives_byte_identical_bundles(tmp_path: Path) -> None:
    # the config and data outside any git checkout, so the provenance holds no commit of this repository
    src = tmp_path / "project"
    src.mkdir()
    shutil.copy(ROOT / "examples" / "penguins.toml", src / "penguins.toml")
    shutil.copy(ROOT / "examples" / "penguins.csv", src / "penguins.csv")
    a = _train(src / "penguins.toml", tmp_path / "out-a", tmp_path / "cwd-a", "1")
    b = _train(src / "penguins.toml", tmp_path / "a-longer-output-folder", tmp_path / "elsewhere", "2")

    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    # every file of the bundle, not only the model: the ORT model and its operator config included
    assert {"model.onnx", "model.ort", "required_operators.config", "manifest.json", "golden.json",
            "card.md"} <= set(files_a)
    differ = [f for f in files_a if (a / f).read_bytes() != (b / f).read_bytes()]
    assert differ == [], f"differ between two trainings: {differ}"
    digest = hashlib.sha256((a / "manifest.json").read_bytes()).hexdigest()
    assert digest == hashlib.sha256((b / "manifest.json").read_bytes()).hexdigest()

    # no machine path in any file: not the scratch folders, not the output or the project folder, not $HOME
    needles = [str(tmp_path), "/tmp/", "skedge-ort-", str(Path.home()), str(ROOT)]
    for f in files_a:
        data = (a / f).read_bytes()
        for needle in needles:
            assert needle.encode() not in data, f"{f} names {needle!r}"
