"""Installs alone: the wheel built from this repo, installed without extras into a fresh virtual
environment, predicts with a bundle made by the trainer. Only numpy and onnxruntime come with it; no
scikit-learn is importable there; and it makes no network call (sockets raise in that interpreter).

One venv per test session (building and installing takes ~10 s with pip's cache): the fixture ``runtime_env``
of tests/runtime_venv.py, shared with tests/e2e/test_package.py.
"""

from __future__ import annotations

import csv
import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.runtime_venv import run

# Everything a runtime-only install may hold: skedge, its two dependencies and theirs, and the venv's own.
ALLOWED = {"skedge", "numpy", "onnxruntime", "flatbuffers", "packaging", "protobuf", "pip", "setuptools",
           "coloredlogs", "humanfriendly", "sympy", "mpmath"}
FORBIDDEN = ("sklearn", "pandas", "scipy", "skl2onnx", "onnx", "coremltools", "joblib", "pyarrow", "dask")


def _run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: int = 300,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run(cmd, env=env, timeout=timeout, cwd=cwd)


# the venv itself is the session fixture ``runtime_env`` (tests/runtime_venv.py, shared with the model-package
# tests through tests/conftest.py)


def _py(runtime_env: dict[str, Any], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([runtime_env["python"], "-c", textwrap.dedent(code), *args], env=runtime_env["env"],
                cwd=runtime_env["work"])


@pytest.mark.slow
def test_the_install_holds_the_runtime_and_nothing_heavy(runtime_env: dict[str, Any]) -> None:
    out = _run([runtime_env["python"], "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
               env=runtime_env["env"], cwd=runtime_env["work"])
    assert out.returncode == 0, out.stderr
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(out.stdout)}
    assert {"skedge", "numpy", "onnxruntime"} <= installed
    assert installed <= ALLOWED, f"a runtime-only install brought in {sorted(installed - ALLOWED)}"
    out = _py(runtime_env, f"""
        import importlib.util, json
        print(json.dumps([m for m in {FORBIDDEN!r} if importlib.util.find_spec(m) is not None]))
    """)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
    out = _py(runtime_env, "import sklearn")
    assert out.returncode != 0 and "No module named 'sklearn'" in out.stderr


@pytest.mark.slow
def test_the_network_guard_is_on(runtime_env: dict[str, Any]) -> None:
    # the control: without it, "no network call" below would prove nothing
    out = _py(runtime_env, """
        import urllib.request
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
    """)
    assert out.returncode != 0 and "network call attempted" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("package", ["skedge.trainer", "skedge.exporter"])
def test_train_packages_are_installed_but_name_their_extra(runtime_env: dict[str, Any], package: str) -> None:
    out = _py(runtime_env, f"import {package}")
    assert out.returncode != 0
    assert f"{package} needs the 'train' extra" in out.stderr and "pip install 'skedge[train]'" in out.stderr


@pytest.mark.slow
def test_predicts_and_verifies_a_trained_bundle_alone(runtime_env: dict[str, Any], penguins_bundle: Path,
                                                      penguins_golden: dict[str, Any]) -> None:
    out = _py(runtime_env, """
        import json, sys
        from skedge.runtime import load
        model = load(sys.argv[1])
        golden = json.loads(open(sys.argv[1] + "/golden.json").read())
        report = model.verify()
        print(json.dumps({"passed": report.passed, "rows": report.rows,
                          "one": model.predict(golden["rows"][0]),
                          "labels": [str(x) for x in model.predict(golden["rows"])],
                          "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "pandas"))}))
    """, str(penguins_bundle))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = [str(x) for x in penguins_golden["expected"]["label"]]  # sklearn's answers, stored by the exporter
    assert got["passed"] and got["rows"] == len(want)
    assert got["labels"] == want and got["one"] == want[0]
    assert got["modules"] == []


def _write_inputs(rows: list[dict[str, Any]], where: Path) -> dict[str, Path]:
    names = list(rows[0])
    csv_path = where / "rows.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", *names])
        for i, r in enumerate(rows):
            w.writerow([f"r{i}", *("" if r[n] is None else r[n] for n in names)])
    jsonl_path = where / "rows.jsonl"
    jsonl_path.write_text("".join(json.dumps({"id": f"r{i}", **r}) + "\n" for i, r in enumerate(rows)))
    return {"csv": csv_path, "jsonl": jsonl_path}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_python_m_skedge_runtime_predict(runtime_env: dict[str, Any], penguins_bundle: Path,
                                         penguins_golden: dict[str, Any], fmt: str, tmp_path: Path) -> None:
    # in a CSV, a cell spelled "" or "NaN" is missing (pandas' rule); a golden row holding such a string
    # category is a different row once written to a file, so those rows stay out
    from skedge.runtime import MISSING_TEXT

    keep = [i for i, r in enumerate(penguins_golden["rows"])
            if not any(isinstance(v, str) and v in MISSING_TEXT for v in r.values())][:150]
    rows = [penguins_golden["rows"][i] for i in keep]
    expected = {k: [v[i] for i in keep] for k, v in penguins_golden["expected"].items()}
    inputs = _write_inputs(rows, tmp_path)
    dest = tmp_path / "predictions.csv"
    out = _run([runtime_env["python"], "-m", "skedge.runtime", "predict", str(penguins_bundle),
                "--input", str(inputs[fmt]), "--output", str(dest)], env=runtime_env["env"], cwd=runtime_env["work"])
    assert out.returncode == 0, out.stderr
    table = list(csv.DictReader(dest.read_text().splitlines()))
    assert [r["prediction"] for r in table] == [str(x) for x in expected["label"]]
    for r, want in zip(table, expected["probabilities"], strict=True):
        assert abs(float(r["proba_Adelie"]) - want[0]) <= 1e-5


@pytest.mark.slow
def test_a_bad_file_is_an_error_message_not_a_traceback(runtime_env: dict[str, Any], penguins_bundle: Path,
                                                        tmp_path: Path) -> None:
    bad = tmp_path / "rows.csv"
    bad.write_text("island,bill_length_mm\nBiscoe,n/a\n")
    out = _run([runtime_env["python"], "-m", "skedge.runtime", "predict", str(penguins_bundle),
                "--input", str(bad)], env=runtime_env["env"], cwd=runtime_env["work"])
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "error:" in out.stderr
