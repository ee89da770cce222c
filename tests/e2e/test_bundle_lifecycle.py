"""The smaller promises around a bundle's files (issue 10.10): verify never writes into a bundle, no 0-byte
file on a full disk, killed runs' leftovers are removed by the next run, inspect takes a bare model, and
``make demo`` never deletes versions a user trained.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skedge.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def bundle(penguins_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(penguins_bundle, tmp_path / "penguins" / "1.0.0"))


def _tree(p: Path) -> dict[str, tuple[int, int, int]]:
    return {str(f.relative_to(p)): (f.stat().st_size, f.stat().st_mtime_ns, f.stat().st_mode)
            for f in sorted(p.rglob("*"))}


# -- verify never writes into a bundle -----------------------------------------------
def test_verify_writes_nothing_into_a_read_only_bundle(bundle: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    for f in [bundle, *bundle.rglob("*")]:
        f.chmod(0o555 if f.is_dir() else 0o444)
    try:
        before = _tree(bundle)
        assert main(["verify", str(bundle)]) == 0
        out = capsys.readouterr().out
        assert "parity: pass" in out
        assert hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest() in out  # its identity
        assert _tree(bundle) == before  # not a file added, changed or touched
        assert not (bundle / "report" / "verify").exists()

        report = tmp_path / "reports" / "penguins"
        assert main(["verify", str(bundle), "--report", str(report)]) == 0
        assert (report / "parity.md").read_text().startswith("# Parity")
        assert (report / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert _tree(bundle) == before

        assert main(["verify", str(bundle), "--report", str(bundle / "report" / "verify")]) == 1
        assert "inside the bundle" in capsys.readouterr().err
        assert _tree(bundle) == before
    finally:
        for f in [bundle, *bundle.rglob("*")]:
            f.chmod(0o755 if f.is_dir() else 0o644)


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.write as on a full disk: the first call writes part of the buffer, the next raises ENOSPC."""
    real = os.write
    calls = {"n": 0}

    def write(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real(fd, bytes(data[: max(1, len(data) // 2)]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)


def test_atomic_write_on_a_full_disk_leaves_no_empty_or_short_file(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from skedge.exporter.bundle import atomic_write

    old = tmp_path / "old.md"
    old.write_bytes(b"the previous report")
    new = tmp_path / "new.md"
    with monkeypatch.context() as m:
        _full_disk(m)
        with pytest.raises(OSError, match="No space left"):
            atomic_write(new, b"x" * 10_000)
    with monkeypatch.context() as m:
        _full_disk(m)
        with pytest.raises(OSError, match="No space left"):
            atomic_write(old, b"y" * 10_000)
    assert not new.exists()  # no 0-byte or half file under the real name
    assert old.read_bytes() == b"the previous report"  # the old content survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.md"]  # no temporary left either
    atomic_write(new, b"z" * 10_000)
    assert new.read_bytes() == b"z" * 10_000


def test_write_bundle_on_a_full_disk_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skedge.exporter.bundle import write_bundle

    files = {"model.onnx": b"m" * 5000, "golden.json": b"{}", "report/parity.md": b"# Parity"}
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        write_bundle(tmp_path, "churn", "1.0.0", files, {"schema": {}})
    monkeypatch.undo()
    assert list((tmp_path / "churn").iterdir()) == []  # no version, no .partial, no empty file
    path = write_bundle(tmp_path, "churn", "1.0.0", files, {"schema": {}})  # and the disk freed: it works
    assert (path / "model.onnx").read_bytes() == files["model.onnx"]
    assert [p.name for p in (tmp_path / "churn").iterdir()] == ["1.0.0"]


def test_verify_report_on_a_full_disk(bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skedge.exporter.verify import verify_bundle

    report = tmp_path / "report"
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        verify_bundle(bundle, report_dir=report)
    monkeypatch.undo()
    assert [p.name for p in report.iterdir()] == []


# -- leftovers of killed runs ------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _old(p: Path, age: float = 3600.0) -> Path:
    p.mkdir(parents=True)
    (p / "model.onnx").write_bytes(b"half a model")
    t = time.time() - age
    os.utime(p, (t, t))
    return p


@pytest.fixture()
def live_pid() -> Any:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def small_pipeline() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    y = np.where(X["a"] + X["b"] > 0, "yes", "no")
    return LogisticRegression().fit(X, y), X


def test_export_removes_what_killed_exports_left(tmp_path: Path, live_pid: int,
                                                 small_pipeline: tuple[Any, pd.DataFrame]) -> None:
    from skedge.exporter import export

    where = tmp_path / "models" / "churn"
    dead = _dead_pid()
    stale = [_old(where / f".1.0.0.{dead}-k3j4h5g6.partial"), _old(where / f".0.9.0.{dead}-abcdefgh.partial"),
             _old(where / ".0.8.0.q1w2e3r4.partial", age=3 * 24 * 3600)]  # an older skedge's name, days old
    kept = [_old(where / f".1.0.0.{live_pid}-zzzzzzzz.partial"),  # a run still going
            _old(where / f".1.0.0.{os.getpid()}-yyyyyyyy.partial"),  # this very process
            _old(where / ".0.7.0.recent00.partial", age=60),  # no pid and recent: maybe live
            _old(where / f"1.0.0.{dead}-notahidden.partial"),  # not ours to touch
            _old(where / f".notes.{dead}-abcdefgh")]
    pipe, X = small_pipeline
    path = export(pipe, X, tmp_path / "models", name="churn", version="2.0.0", targets=("onnx",))
    assert path.is_dir()
    assert [p for p in stale if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []
    visible = sorted(p.name for p in where.iterdir() if not p.name.startswith("."))
    assert visible == [f"1.0.0.{dead}-notahidden.partial", "2.0.0"]


def test_predict_removes_what_killed_predict_runs_left(penguins_bundle: Path, tmp_path: Path, live_pid: int) -> None:
    golden = json.loads((penguins_bundle / "golden.json").read_text())
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in golden["rows"][:20]))
    out = tmp_path / "scored"
    dead = _dead_pid()
    stale = _old(out / f".skedge-staging-{dead}-1a2b3c4d")
    alive = _old(out / f".skedge-staging-{live_pid}-5e6f7a8b")
    assert main(["predict", str(penguins_bundle), "--input", str(rows), "--output", str(out)]) == 0
    assert not stale.exists() and alive.exists()
    assert (out / "rows.jsonl").exists() or any(p.name.startswith("rows") for p in out.iterdir())


# -- inspect ------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["onnx", "ort"])
def test_inspect_takes_a_bare_model(penguins_bundle: Path, tmp_path: Path, suffix: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.runtime import load

    bare = tmp_path / f"penguins.{suffix}"
    shutil.copy(penguins_bundle / f"model.{suffix}", bare)
    assert main(["inspect", str(bare)]) == 0
    out = capsys.readouterr().out
    model = load(bare)
    assert "bare" in out and "Adelie, Chinstrap, Gentoo" in out
    for f in model.schema.features:
        assert f.name in out
    assert main(["inspect", str(bare), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == model.schema.to_json()


def test_inspect_refuses_a_manifest_that_disagrees_with_the_model(bundle: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    m = json.loads((bundle / "manifest.json").read_text())
    m["classes"] = m["classes"][::-1]
    (bundle / "manifest.json").write_text(json.dumps(m))
    assert main(["inspect", str(bundle)]) == 1
    assert "the model itself says" in capsys.readouterr().err


# -- make demo ---------------------------------------------------------------------------
def test_make_demo_never_deletes_a_users_versions() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    proc = subprocess.run(["make", "-n", "-o", "setup", "-o", ".venv/.installed", "demo"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    removals = [ln for ln in lines if ln.lstrip().startswith("rm ")]
    assert removals, proc.stdout  # the demo does clean up after itself...
    for ln in removals:  # ...but only what it made, in its own folder
        targets = [t for t in ln.split()[1:] if not t.startswith("-")]
        assert targets and all(t.startswith("models/demo/") for t in targets), ln
    train = next(ln for ln in lines if " train " in ln)
    assert "--out models/demo" in train


# -- progress ---------------------------------------------------------------------------
def test_export_reports_a_line_per_stage(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from skedge.exporter import export
    from skedge.exporter.progress import report, reporting

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    y = np.where(X["a"] > X["b"], "up", "down")
    forest = RandomForestClassifier(n_estimators=12, max_depth=3, random_state=0).fit(X, y)
    lines: list[str] = []
    with reporting(lines.append):
        export(forest, X, tmp_path, name="forest", targets=("onnx", "ort"))
    report("after the context: nobody listens")  # the hook is gone: no output, no error
    assert lines[0] == "convert to ONNX (RandomForestClassifier, 12 trees)"
    assert lines[-1] == "write the bundle"
    for stage in ("golden rows", "check ONNX parity", "ORT"):
        assert any(stage in ln for ln in lines), (stage, lines)
    assert "after the context" not in " ".join(lines)
