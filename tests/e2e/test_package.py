"""``skedge package`` (issue 16): the penguins bundle as a wheel and as an npm package, each installed the way an
app installs it (pip into the runtime-only venv with no scikit-learn; npm into a fresh Node project) and asked
the golden rows, against the Python runtime in this process. Plus: the bytes are reproducible, a tampered file is
refused, a schema change without a new major version is refused, and names are checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skedge.exporter.package import Packaged, dist_name, package, schema_changes
from skedge.runtime import BundleError, ConfigError, GateError, load
from skedge.runtime._parity import compare_outputs
from tests.e2e.conftest import DEMO, unavailable
from tests.runtime_venv import run

ROWS_WITH_MISSING = [  # the missing-value contract: null is missing, "" and an unseen category are strings
    {"island": None, "bill_length_mm": None, "bill_depth_mm": 17.0, "flipper_length_mm": None,
     "body_mass_g": 4000.0, "sex": None, "year": None},
    {"island": "", "bill_length_mm": 45.1, "bill_depth_mm": 14.5, "flipper_length_mm": 215.0,
     "body_mass_g": 5000.0, "sex": "", "year": 2008},
    {"island": "Atlantis", "bill_length_mm": 39.0, "bill_depth_mm": 18.0, "flipper_length_mm": 190.0,
     "body_mass_g": 3700.0, "sex": "male", "year": 2009},
]


@pytest.fixture(scope="module")
def built(penguins_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    return package(penguins_bundle, tmp_path_factory.mktemp("pkg"))


@pytest.fixture(scope="module")
def reference(penguins_bundle: Path) -> dict[str, Any]:
    """What the Python runtime in this process answers for the golden rows and the rows with missing values."""
    golden = json.loads((penguins_bundle / "golden.json").read_text(encoding="utf-8"))
    model = load(penguins_bundle)
    return {"rows": golden["rows"], "golden": golden, "model": model,
            "outputs": {k: v.tolist() for k, v in model.predict_outputs(golden["rows"]).items()},
            "missing": {k: v.tolist() for k, v in model.predict_outputs(ROWS_WITH_MISSING).items()}}


# -- the wheel ----------------------------------------------------------------------------------------------

def _record_ok(wheel: Path) -> list[str]:
    """Every member of the wheel is in RECORD with its own sha256 and size (checked here, not by the builder)."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (record,) = [n for n in names if n.endswith(".dist-info/RECORD")]
        rows = {line.split(",")[0]: line.split(",")[1:] for line in zf.read(record).decode().splitlines()}
        assert set(rows) == set(names)
        for n in names:
            if n == record:
                assert rows[n] == ["", ""]
                continue
            data = zf.read(n)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert rows[n] == [f"sha256={digest}", str(len(data))], n
        assert {zi.date_time for zi in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    return names


def test_the_wheel_and_the_tarball_are_byte_reproducible(built: Packaged, penguins_bundle: Path,
                                                          tmp_path: Path) -> None:
    again = package(penguins_bundle, tmp_path)
    assert again.wheel.name == built.wheel.name == "penguins_model-1.0.0-py3-none-any.whl"
    assert again.npm.name == built.npm.name == "penguins-model-1.0.0.tgz"
    assert again.wheel.read_bytes() == built.wheel.read_bytes()
    assert again.npm.read_bytes() == built.npm.read_bytes()
    names = _record_ok(built.wheel)
    manifest = json.loads((penguins_bundle / "manifest.json").read_text(encoding="utf-8"))
    # the bundle whole as package data: every file the manifest lists, and the manifest itself
    assert {n.removeprefix("penguins_model/bundle/") for n in names if n.startswith("penguins_model/bundle/")} \
        == {*manifest["files"], "manifest.json"}
    with zipfile.ZipFile(built.wheel) as zf:
        meta = zf.read("penguins_model-1.0.0.dist-info/METADATA").decode()
    assert "Name: penguins-model\nVersion: 1.0.0\n" in meta
    requires = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
    assert requires[0] == "Requires-Dist: skedge<0.2,>=0.1.0"  # skedge alone, bounded
    assert all("skedge" in r for r in requires)


@pytest.fixture(scope="module")
def installed(runtime_env: dict[str, Any], built: Packaged) -> Iterator[dict[str, Any]]:
    """The model's wheel pip-installed into the shared runtime-only venv (offline: skedge is already there),
    removed again afterwards so that venv still holds the runtime alone for tests/runtime/test_wheel.py."""
    py, env = runtime_env["python"], runtime_env["env"]
    out = run([py, "-m", "pip", "install", "-q", "--no-index", "--disable-pip-version-check", str(built.wheel)],
              env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    try:
        out = run([py, "-c", "import penguins_model, sys; sys.stdout.write(str(penguins_model.BUNDLE))"], env=env,
                  cwd=runtime_env["work"])
        assert out.returncode == 0, out.stderr
        yield {**runtime_env, "bundle": Path(out.stdout)}
    finally:
        out = run([py, "-m", "pip", "uninstall", "-y", "-q", "--disable-pip-version-check", "penguins-model"], env=env)
        assert out.returncode == 0, out.stderr


def _py(env: dict[str, Any], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run([env["python"], "-c", textwrap.dedent(code), *args], env=env["env"], cwd=env["work"])


@pytest.mark.slow
def test_pip_check_passes_and_the_wheel_depends_on_skedge_alone(installed: dict[str, Any]) -> None:
    out = run([installed["python"], "-m", "pip", "check", "--disable-pip-version-check"], env=installed["env"])
    assert out.returncode == 0 and "No broken requirements found" in out.stdout, out.stdout + out.stderr
    out = run([installed["python"], "-m", "pip", "show", "penguins-model"], env=installed["env"])
    assert "Version: 1.0.0" in out.stdout and "Requires: skedge\n" in out.stdout, out.stdout


@pytest.mark.slow
def test_the_installed_wheel_predicts_the_golden_rows_like_the_runtime(installed: dict[str, Any],
                                                                       reference: dict[str, Any],
                                                                       tmp_path: Path) -> None:
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"golden": reference["rows"], "missing": ROWS_WITH_MISSING}), encoding="utf-8")
    out = _py(installed, """
        import json, sys
        import penguins_model as m
        rows = json.loads(open(sys.argv[1]).read())
        print(json.dumps({
            "version": m.__version__, "features": [f.name for f in m.schema.features], "classes": list(m.classes),
            "one": str(m.predict(rows["golden"][0])),
            "label": [str(x) for x in m.predict(rows["golden"])],
            "probabilities": m.predict_proba(rows["golden"]).tolist(),
            "missing_label": [str(x) for x in m.predict(rows["missing"])],
            "missing_probabilities": m.predict_proba(rows["missing"]).tolist(),
            "verify": m.verify().passed,
            "heavy": sorted(k for k in sys.modules if k.split(".")[0] in ("sklearn", "pandas", "scipy")),
        }))
    """, str(rows))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    model = reference["model"]
    assert got["version"] == "1.0.0" and got["classes"] == list(model.classes)
    assert got["features"] == [f.name for f in model.schema.features]
    assert got["heavy"] == [] and got["verify"] is True
    want = reference["outputs"]
    assert got["label"] == [str(x) for x in want["label"]] and got["one"] == str(want["label"][0])
    # the same onnxruntime on the same bytes: equal, not merely close
    np.testing.assert_array_equal(np.asarray(got["probabilities"]), np.asarray(want["probabilities"]))
    assert got["missing_label"] == [str(x) for x in reference["missing"]["label"]]
    np.testing.assert_array_equal(np.asarray(got["missing_probabilities"]),
                                  np.asarray(reference["missing"]["probabilities"]))
    # and sklearn's answers, stored in the bundle by the exporter
    assert got["label"] == [str(x) for x in reference["golden"]["expected"]["label"]]


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["model.onnx", "golden.json", "manifest.json"])
def test_a_tampered_file_inside_the_installed_wheel_is_refused_on_load(installed: dict[str, Any],
                                                                       victim: str) -> None:
    path = installed["bundle"] / victim
    original = path.read_bytes()
    if victim == "model.onnx":
        data = bytearray(original)
        data[len(data) // 2] ^= 0x01
        changed = bytes(data)
    else:  # same size, still valid JSON: only the sha256 can tell
        changed = original.replace(b'"Adelie"', b'"Adelia"', 1)
    assert changed != original and len(changed) == len(original)
    try:
        path.write_bytes(changed)
        out = _py(installed, "import penguins_model as m; m.predict([])")
    finally:
        path.write_bytes(original)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("skedge.runtime._errors.BundleError: ") or last.startswith("BundleError: "), last
    expected = "expected" if victim == "manifest.json" else "does not match its manifest"
    assert expected in last, last
    out = _py(installed, "import penguins_model as m; print(len(m.predict([])))")  # restored: loads again
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stderr


def test_a_signed_bundle_is_checked_at_build_and_by_the_package(penguins_bundle: Path, tmp_path: Path) -> None:
    import sys

    from skedge.runtime.signing import generate_keypair, sign_bundle

    bundle = tmp_path / "penguins" / "1.0.0"
    shutil.copytree(penguins_bundle, bundle)
    _, pub = generate_keypair(tmp_path / "keys")
    priv = tmp_path / "keys" / "skedge.key"
    sign_bundle(bundle, priv)
    _, other = generate_keypair(tmp_path / "other")
    with pytest.raises(BundleError, match="signature"):
        package(bundle, tmp_path / "refused", trust=other)
    assert not (tmp_path / "refused").exists()
    built = package(bundle, tmp_path / "dist", trust=pub)
    assert built.signed
    site = tmp_path / "site"
    with zipfile.ZipFile(built.wheel) as zf:
        assert "penguins_model/bundle/signature.json" in zf.namelist()
        zf.extractall(site)
    code = textwrap.dedent("""
        import sys
        import penguins_model as m
        try:
            m.load(trust=sys.argv[2], state_dir=sys.argv[3])
        except Exception as exc:
            print(type(exc).__name__, exc)
        m.load(trust=sys.argv[1], state_dir=sys.argv[3])
        print("ok", m.predict([]).shape)
    """)
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = run([sys.executable, "-c", code, str(pub), str(other), str(tmp_path / "state")], env=env)
    assert out.returncode == 0, out.stderr
    refused, ok = out.stdout.strip().splitlines()
    assert refused.startswith("BundleError") and "signature" in refused
    assert ok == "ok (0,)"


# -- names ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Penguins-model", "penguins_model", "1model", "pen--guins", "-x", "x-",
                                  "penguins.model", "class", "skedge", "a" * 101, "", "pén", "penguins-model\n"])
def test_a_bad_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        dist_name("penguins", name)


@pytest.mark.parametrize("name", ["numpy", "onnxruntime", "protobuf", "cryptography", "onnxruntime-node",
                                  "onnxruntime-web"])
def test_the_name_of_a_runtime_dependency_is_refused(name: str) -> None:
    # `--name numpy` used to build numpy-1.0.0-py3-none-any.whl: installing the model replaced numpy itself
    with pytest.raises(ConfigError, match="the model's runtime installs or needs"):
        dist_name("penguins", name)


def test_an_out_that_is_a_file_is_refused_in_words(penguins_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "dist").write_text("not a folder")
    with pytest.raises(ConfigError, match="--out .* is a file: give a directory"):
        package(penguins_bundle, tmp_path / "dist")
    assert (tmp_path / "dist").read_text() == "not a folder"


def test_names_default_to_the_model_and_a_good_name_is_kept() -> None:
    assert dist_name("penguins") == "penguins-model"
    assert dist_name("Penguins_Strict.v2") == "penguins-strict-v2-model"
    assert dist_name("penguins", "my-model2") == "my-model2"
    with pytest.raises(ConfigError, match="--name"):
        dist_name("2024")  # "2024-model" imports as nothing


def test_the_command_refuses_a_bad_name_in_one_line(penguins_bundle: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    assert main(["package", str(penguins_bundle), "--out", str(tmp_path), "--name", "Bad_Name"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'Bad_Name' is not a package name" in err
    assert list(tmp_path.iterdir()) == []


# -- the schema rule against the registry ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small bundles of one model, "toy": 1.0.0 (published), then versions with the same or another schema."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from skedge.exporter import export
    from skedge.registry import init_registry, publish

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    y = np.where(X["a"] > 0, "yes", "no")
    out = tmp_path_factory.mktemp("toys")

    def toy(version: str, frame: pd.DataFrame, labels: Any) -> Path:
        return export(LogisticRegression().fit(frame, labels), frame, out, name="toy", version=version,
                      targets=["onnx"])

    wide = X.assign(c=rng.normal(size=120))
    reg = init_registry(out / "reg")
    publish(toy("1.0.0", X, y), reg)
    return {"reg": reg, "same": toy("1.1.0", X, np.where(X["b"] > 0, "yes", "no")),
            "added": toy("1.2.0", wide, y), "major": toy("2.0.0", wide, y),
            "classes": toy("1.3.0", X, np.where(X["a"] > 0, "yes", "maybe"))}


def test_the_same_schema_may_take_a_minor_version(toys: dict[str, Path], tmp_path: Path) -> None:
    built = package(toys["same"], tmp_path, registry=toys["reg"])
    assert built.previous == "1.0.0" and built.version == "1.1.0" and built.wheel.is_file()


@pytest.mark.parametrize(("which", "what"), [("added", "field 'c' added"),
                                             ("classes", "classes ['no', 'yes'] -> ['maybe', 'yes']")])
def test_a_schema_change_with_a_minor_bump_is_refused(toys: dict[str, Path], tmp_path: Path, which: str,
                                                      what: str) -> None:
    with pytest.raises(GateError) as info:
        package(toys[which], tmp_path / "out", registry=toys["reg"])
    msg = str(info.value)
    assert what in msg and "changes the schema of 1.0.0" in msg and "new major version (2.0.0)" in msg
    assert "\n" not in msg
    assert not (tmp_path / "out").exists()


def test_a_schema_change_with_a_major_bump_is_packaged(toys: dict[str, Path], tmp_path: Path) -> None:
    built = package(toys["major"], tmp_path, registry=toys["reg"])
    assert built.previous == "1.0.0" and built.version == "2.0.0"


def test_the_command_packages_a_registry_version_and_refuses_in_one_line(toys: dict[str, Path], tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    reg = str(toys["reg"])
    assert main(["package", "toy@1.0.0", "--registry", reg, "--out", str(tmp_path / "a")]) == 0
    said = capsys.readouterr().out
    assert "toy_model-1.0.0-py3-none-any.whl" in said and "toy-model-1.0.0.tgz" in said
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["toy-model-1.0.0.tgz",
                                                                   "toy_model-1.0.0-py3-none-any.whl"]
    assert main(["package", str(toys["added"]), "--registry", reg, "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "field 'c' added" in err and "new major version" in err


def test_schema_changes_name_each_difference() -> None:
    def manifest(features: list[tuple[str, str, bool]], classes: list[str]) -> dict[str, Any]:
        return {"schema": {"task": "classification", "classes": classes,
                           "features": [{"name": n, "kind": k, "nullable": z} for n, k, z in features]}}

    old = manifest([("a", "number", True), ("b", "category", True), ("c", "integer", False)], ["x", "y"])
    assert schema_changes(old, old) == []
    new = manifest([("a", "integer", True), ("b", "category", False), ("d", "number", True)], ["x", "y", "z"])
    assert schema_changes(old, new) == ["field 'd' added", "field 'c' removed",
                                        "field 'a' retyped (number? -> integer?)",
                                        "field 'b' retyped (category? -> category)",
                                        "classes ['x', 'y'] -> ['x', 'y', 'z']"]


# -- the npm package ------------------------------------------------------------------------------------------

def test_the_tarball_has_npm_packs_layout_and_the_demo_runtime_pins(built: Packaged) -> None:
    with tarfile.open(built.npm) as tar:
        members = tar.getmembers()
        assert all(m.name.startswith("package/") and m.isfile() for m in members)
        pkg = json.loads(tar.extractfile("package/package.json").read())  # type: ignore[union-attr]
        core = tar.extractfile("package/skedge-core.js").read()  # type: ignore[union-attr]
    names = {m.name.removeprefix("package/") for m in members}
    assert {"package.json", "node.js", "browser.js", "index.d.ts", "model.onnx", "manifest.json",
            "golden.json"} <= names
    assert pkg["name"] == "penguins-model" and pkg["version"] == "1.0.0" and pkg["type"] == "module"
    demo = json.loads((DEMO / "package.json").read_text(encoding="utf-8"))
    assert pkg["peerDependencies"] == {"onnxruntime-node": demo["devDependencies"]["onnxruntime-node"],
                                       "onnxruntime-web": demo["dependencies"]["onnxruntime-web"]}
    assert all(v == {"optional": True} for v in pkg["peerDependenciesMeta"].values())
    assert pkg["exports"]["."]["node"] == "./node.js" and pkg["exports"]["."]["browser"] == "./browser.js"
    assert core == (DEMO / "skedge-core.js").read_bytes()  # the one JS copy of the input rules


def test_the_typescript_types_follow_the_schema(built: Packaged, penguins_bundle: Path) -> None:
    with tarfile.open(built.npm) as tar:
        dts = tar.extractfile("package/index.d.ts").read().decode()  # type: ignore[union-attr]
    schema = json.loads((penguins_bundle / "manifest.json").read_text(encoding="utf-8"))["schema"]
    body = dts.split("export interface Row {", 1)[1].split("\n}", 1)[0]
    fields = {ln.strip().split(":", 1)[0]: ln.strip().split(":", 1)[1].strip().rstrip(";")
              for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("/**")}
    assert list(fields) == [f["name"] for f in schema["features"]]
    for f in schema["features"]:
        parts = [p.strip() for p in fields[f["name"]].split("|")]
        assert (parts[-1] == "null") == f["nullable"]
        if f["kind"] == "category":
            assert parts[:len(f["categories"])] == [json.dumps(c) for c in f["categories"]]
        else:
            assert parts[0] == "number"
    assert 'export type Label = "Adelie" | "Chinstrap" | "Gentoo";' in dts


def _npm_project(tarballs: list[Path], where: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is not installed: apt-get install nodejs npm")
    where.mkdir()
    (where / "package.json").write_text('{"name": "app", "version": "1.0.0", "private": true, "type": "module"}\n')
    # offline: the tarball, and onnxruntime-node from the demo's own install (as the Makefile installs it)
    env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip", "npm_config_update_notifier": "false"}
    out = run([npm, "install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", *map(str, tarballs),
               f"onnxruntime-node@file:{DEMO / 'node_modules' / 'onnxruntime-node'}"], env=env, cwd=where, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    return where


@pytest.fixture(scope="module")
def node_project(node: str, built: Packaged, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _npm_project([built.npm], tmp_path_factory.mktemp("node") / "app")


NODE_SCRIPT = """
import { readFile } from 'node:fs/promises';
import * as m from 'penguins-model';
const rows = JSON.parse(await readFile(process.argv[2], 'utf8'));
const out = { name: m.name, version: m.version, classes: m.classes, features: m.schema.features.map((f) => f.name) };
out.outputs = await m.predictOutputs(rows.golden);
out.one = await m.predict(rows.golden[0]);
out.labels = await m.predict(rows.golden);
out.proba = await m.predictProba(rows.golden);
out.missing = await m.predictOutputs(rows.missing);
out.verify = await m.verify();
try { await m.predict({ ...rows.golden[0], year: 2008.5 }); } catch (err) { out.bad = `${err.name}: ${err.message}`; }
const { sex, ...short } = rows.golden[0];
try { await m.predict(short); } catch (err) { out.absent = `${err.name}: ${err.message}`; }
process.stdout.write(JSON.stringify(out));
"""


def test_the_npm_package_predicts_the_golden_rows_like_the_runtime(node: str, node_project: Path,
                                                                   reference: dict[str, Any]) -> None:
    (node_project / "rows.json").write_text(json.dumps({"golden": reference["rows"], "missing": ROWS_WITH_MISSING}),
                                            encoding="utf-8")
    (node_project / "run.mjs").write_text(NODE_SCRIPT, encoding="utf-8")
    out = run([node, "run.mjs", "rows.json"], cwd=node_project, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    model = reference["model"]
    assert got["name"] == "penguins" and got["version"] == "1.0.0" and got["classes"] == list(model.classes)
    assert got["features"] == [f.name for f in model.schema.features]
    golden = reference["golden"]
    for outputs, want in ((got["outputs"], reference["outputs"]), (got["missing"], reference["missing"])):
        row = compare_outputs("npm", outputs, want, golden.get("tolerance"))
        assert row.passed and row.label_agreement == 1.0, row
    assert got["labels"] == reference["outputs"]["label"] and got["one"] == reference["outputs"]["label"][0]
    assert got["proba"] == got["outputs"]["probabilities"]
    assert got["verify"]["passed"] and got["verify"]["rows"] == len(golden["rows"])
    assert got["bad"] == "SchemaError: row 0, field 'year': expected a whole number, got 2008.5 (number)"
    assert got["absent"].startswith("SchemaError: row 0, field 'sex': missing")


def test_the_npm_package_refuses_a_tampered_model(node: str, node_project: Path) -> None:
    target = node_project / "node_modules" / "penguins-model" / "model.onnx"
    original = target.read_bytes()
    data = bytearray(original)
    data[-1] ^= 0x01
    script = "import { load } from 'penguins-model'; await load();"
    try:
        target.write_bytes(bytes(data))
        out = run([node, "--input-type=module", "-e", script], cwd=node_project, timeout=60)
    finally:
        target.write_bytes(original)
    assert out.returncode != 0
    assert "BundleError" in out.stderr and "penguins/model.onnx does not match its manifest" in out.stderr


@pytest.fixture(scope="module")
def other_tasks(node: str, body_mass_bundle: Path, anomaly_bundle: Path,
                tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A regression and an anomaly model, packaged and installed side by side in one Node project."""
    out = tmp_path_factory.mktemp("tasks")
    built = {b.parent.name: package(b, out / "dist") for b in (body_mass_bundle, anomaly_bundle)}
    project = _npm_project([b.npm for b in built.values()], out / "app")
    return project, {name: (body_mass_bundle if name == "penguins-body-mass" else anomaly_bundle)
                     for name in built}


@pytest.mark.parametrize(("model", "label"), [("penguins-body-mass", "number"), ("penguins-anomaly", "1 | -1")])
def test_regression_and_anomaly_packages_answer_like_the_runtime(node: str, other_tasks: tuple[Path, dict[str, Path]],
                                                                 model: str, label: str) -> None:
    project, bundles = other_tasks
    golden = json.loads((bundles[model] / "golden.json").read_text(encoding="utf-8"))
    (project / f"{model}.json").write_text(json.dumps(golden["rows"]), encoding="utf-8")
    script = (f"import {{ readFile }} from 'node:fs/promises'; import * as m from '{model}-model';"
              f"const rows = JSON.parse(await readFile('{model}.json', 'utf8'));"
              "const out = { outputs: await m.predictOutputs(rows), main: await m.predict(rows) };"
              "try { await m.predictProba(rows); } catch (err) { out.proba = `${err.name}: ${err.message}`; }"
              "process.stdout.write(JSON.stringify(out));")
    out = run([node, "--input-type=module", "-e", script], cwd=project, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = {k: v.tolist() for k, v in load(bundles[model]).predict_outputs(golden["rows"]).items()}
    row = compare_outputs("npm", got["outputs"], want, golden.get("tolerance"))
    assert row.passed and row.rows == len(golden["rows"]), row
    main = "label" if "label" in want else "value"
    assert got["main"] == got["outputs"][main]
    assert got["proba"].startswith("SkedgeError: penguins-") and "has no probabilities" in got["proba"]
    dts = (project / "node_modules" / f"{model}-model" / "index.d.ts").read_text(encoding="utf-8")
    assert f"export type Label = {label};" in dts and "predictProba" not in dts


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>package</title>
<script type="importmap">{"imports": {"onnxruntime-web": "./ort/ort.wasm.min.mjs"}}</script>
<script type="module">
import * as m from './pkg/browser.js';
m.ort.env.wasm.numThreads = 1;  // no cross-origin isolation here: one thread, as the demo page runs
m.ort.env.wasm.proxy = false;
window.pkg = m;
</script></head><body></body></html>
"""

BROWSER_JS = """async (rows) => {
  const m = window.pkg;
  const out = { outputs: await m.predictOutputs(rows.golden), missing: await m.predictOutputs(rows.missing),
                one: await m.predict(rows.golden[0]), verify: await m.verify() };
  try { await m.predict({ ...rows.golden[0], year: 2008.5 }); } catch (err) { out.bad = `${err.name}: ${err.message}`; }
  return out;
}"""


@pytest.mark.browser
def test_the_npm_package_predicts_in_a_browser_like_the_runtime(browser: Any, web_runtime: Any, built: Packaged,
                                                                reference: dict[str, Any]) -> None:
    """The package's browser export over onnxruntime-web in Chromium; the import map stands in for a bundler."""
    from skedge.mobile_demo import RUNTIME_FILES, DemoServer

    files: dict[str, Any] = {"index.html": PAGE.encode("utf-8")}
    with tarfile.open(built.npm) as tar:
        for member in tar.getmembers():
            files["pkg/" + member.name.removeprefix("package/")] = tar.extractfile(member).read()  # type: ignore[union-attr]
    for name in RUNTIME_FILES:
        files[f"ort/{name}"] = web_runtime.dir / name
    with DemoServer(files, port=0) as server:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(server.url + "index.html")
        page.wait_for_function("() => window.pkg !== undefined", timeout=60_000)
        got = page.evaluate(BROWSER_JS, {"golden": reference["rows"], "missing": ROWS_WITH_MISSING})
        page.close()
    assert errors == []
    for outputs, want in ((got["outputs"], reference["outputs"]), (got["missing"], reference["missing"])):
        row = compare_outputs("npm-web", outputs, want, reference["golden"].get("tolerance"))
        assert row.passed and row.label_agreement == 1.0, row
    assert got["one"] == reference["outputs"]["label"][0]
    assert got["verify"]["passed"] and got["verify"]["rows"] == len(reference["rows"])
    assert got["bad"] == "SchemaError: row 0, field 'year': expected a whole number, got 2008.5 (number)"


def test_a_labels_only_package_refuses_probabilities_in_one_line(node: str, tmp_path: Path) -> None:
    # predictProba of a LinearSVC package used to throw "TypeError: Cannot read properties of undefined (reading
    # '0')", and index.d.ts declared it
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    from skedge.exporter import export

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=80), "z": rng.normal(size=80)})
    pipe = Pipeline([("m", LinearSVC())]).fit(df, np.where(df.x + df.z > 0, "up", "down"))
    bundle = export(pipe, df, tmp_path / "models", name="svc", version="1.0.0", targets=["onnx"])
    project = _npm_project([package(bundle, tmp_path / "dist").npm], tmp_path / "app")
    rows = df.head(5).to_dict("records")
    script = ("import * as m from 'svc-model';"
              f"const out = {{ labels: await m.predict({json.dumps(rows)}) }};"
              "try { await m.predictProba({ x: 1, z: 1 }); } catch (err) { out.proba = `${err.name}: ${err.message}`; }"
              "process.stdout.write(JSON.stringify(out));")
    out = run([node, "--input-type=module", "-e", script], cwd=project, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["labels"] == pipe.predict(df.head(5)).tolist()
    assert got["proba"].startswith("SchemaError: svc answers labels only")
    dts = (project / "node_modules" / "svc-model" / "index.d.ts").read_text(encoding="utf-8")
    assert "predictProba" not in dts and "probabilities" not in dts and "export declare const classes" in dts


def test_a_multi_output_regressor_package_types_a_row_of_values(node: str, tmp_path: Path) -> None:
    # index.d.ts said predict(row) answers a number; a multi-output model answers one value per output
    import pandas as pd
    from sklearn.linear_model import Ridge
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.pipeline import Pipeline

    from skedge.exporter import export

    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=80), "z": rng.normal(size=80)})
    pipe = Pipeline([("m", MultiOutputRegressor(Ridge()))]).fit(df, np.c_[df.x * 2, df.z - df.x])
    bundle = export(pipe, df, tmp_path / "models", name="two", version="1.0.0", targets=["onnx"])
    project = _npm_project([package(bundle, tmp_path / "dist").npm], tmp_path / "app")
    row = df.iloc[0].to_dict()
    script = ("import * as m from 'two-model';"
              f"process.stdout.write(JSON.stringify(await m.predict({json.dumps(row)})));")
    out = run([node, "--input-type=module", "-e", script], cwd=project, timeout=120)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(json.loads(out.stdout), pipe.predict(df.head(1))[0], rtol=1e-12, atol=1e-12)
    dts = (project / "node_modules" / "two-model" / "index.d.ts").read_text(encoding="utf-8")
    assert "export type Label = number[];" in dts and "export type Outputs = { value: number[][] };" in dts
