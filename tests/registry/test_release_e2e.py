"""Releasing a model end to end: v1 and a worse v2 trained from the penguins example, published, v1 promoted,
v2 refused by the gate, forced with a reason, rolled back; `history --at` answers for a time in between."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from skedge.cli import main
from skedge.runtime import load
from skedge.runtime.signing import parse_time

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATA = EXAMPLES / "penguins.csv"


@pytest.fixture(scope="module")
def worse_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The penguins config with a weak estimator (a decision stump) as version 2.0.0."""
    from skedge.trainer import train

    d = tmp_path_factory.mktemp("v2")
    return train(_stump_config(d / "penguins_v2.toml", "2.0.0"), d / "models").path


def _stump_config(path: Path, version: str, evaluation: str = "") -> Path:
    """The penguins config with a decision stump (clearly worse than the example's forest)."""
    path.write_text(f'''name = "penguins"
version = "{version}"
seed = 42
[data]
path = {json.dumps(str(DATA))}
target = "species"
[model]
estimator = "decision_tree"
params = {{ max_depth = 1 }}
[evaluation]
holdout = 0.2
{evaluation}
[export]
targets = ["onnx"]
''')
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_release_flow(penguins_bundle: Path, worse_v2: Path, tmp_path: Path, keys: tuple[Path, Path],
                      capsys: pytest.CaptureFixture[str]) -> None:
    reg = str(tmp_path / "reg")
    r = ["--registry", reg]
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    import shutil

    shutil.copytree(penguins_bundle, v1)
    shutil.copytree(worse_v2, v2)
    for b in (v1, v2):
        assert _run(capsys, "sign", str(b), "--key", str(keys[0]))[0] == 0
    assert _run(capsys, "registry", "init", reg, "--require-signatures", str(keys[1]))[0] == 0
    for b in (v1, v2):
        code, out, err = _run(capsys, "publish", str(b), *r)
        assert code == 0 and "published" in out and "signed" in out, err
    k = ["--key", str(keys[0])]
    code, out, err = _run(capsys, "promote", "penguins@1.0.0", "--alias", "prod", *r, "--data", str(DATA), *k)
    assert code == 0 and "penguins@prod -> 1.0.0" in out, err
    time.sleep(0.05)
    between = parse_time(json.loads(_run(capsys, "history", "penguins", *r, "--json")[1])[0]["time"])
    time.sleep(0.05)

    # the gate, on the benchmark kept from the first promotion (no --data: reused), through the runtime
    code, out, err = _run(capsys, "promote", "penguins@2.0.0", "--alias", "prod", *r, *k)
    assert code == 1
    assert err.count("\n") == 1 and "refused by the gate: accuracy" in err and "rule: at most 0.01 drop" in err, err
    v2_acc = float(err.split("accuracy ")[1].split(" ")[0])
    v1_acc = float(err.split("vs ")[1].split(" ")[0])
    # the figures are the runtime's answers on the data, checked here against the bundles themselves
    import csv

    with open(DATA, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for bundle, acc in ((v1, v1_acc), (v2, v2_acc)):
        model = load(bundle)
        feats = {f.name: [_cell(row[f.name], f.kind) for row in rows] for f in model.schema.features}
        labels = model.predict(feats)
        assert abs(sum(str(p) == row["species"] for p, row in zip(labels, rows, strict=True)) / len(rows) - acc) < 1e-4
    assert v1_acc - v2_acc > 0.1
    assert _run(capsys, "resolve", "penguins@prod", *r)[1].strip().endswith("1.0.0")  # the refusal changed nothing
    assert len(json.loads(_run(capsys, "history", "penguins", *r, "--json")[1])) == 1

    code, out, err = _run(capsys, "promote", "penguins@2.0.0", "--alias", "prod", *r, *k, "--force")
    assert code == 1 and "--force needs --reason" in err
    code, out, err = _run(capsys, "promote", "penguins@2.0.0", "--alias", "prod", *r, *k, "--force",
                          "--reason", "the stump is smaller, accepted for the demo")
    assert code == 0 and "FORCED past the gate" in out and "REFUSED" in out, err
    model = load(reg, name="penguins", alias="prod", trust=keys[1])
    assert model.version == "2.0.0"
    code, out, err = _run(capsys, "inspect", "penguins@prod", *r)  # the gate report, where the holder came from
    assert code == 0 and "penguins 2.0.0" in out, err
    assert "penguins@prod is 2.0.0" in out and "FORCED: the stump is smaller" in out and "REFUSED — accuracy" in out
    assert "flip rate" in out
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text("".join(DATA.read_text().splitlines(keepends=True)[:21]))
    code, out, err = _run(capsys, "predict", "penguins@prod", *r, "--input", str(rows_csv))
    assert code == 0, err
    assert [ln.split(",")[0] for ln in out.splitlines()[1:]] == [str(x) for x in load(v2).predict(
        {f.name: [_cell(row[f.name], f.kind) for row in rows[:20]] for f in load(v2).schema.features})]
    time.sleep(0.05)
    after_force = parse_time(json.loads(_run(capsys, "history", "penguins", *r, "--json")[1])[-1]["time"])

    code, out, err = _run(capsys, "rollback", "penguins", "--alias", "prod", *r, *k)
    assert code == 0 and "2.0.0 -> 1.0.0" in out, err
    assert load(reg, name="penguins", alias="prod", trust=keys[1]).version == "1.0.0"

    code, out, _ = _run(capsys, "history", "penguins", *r)
    lines = out.splitlines()
    assert "promote  prod: - -> 1.0.0" in lines[0]
    assert any("prod: 1.0.0 -> 2.0.0" in ln and "FORCED: the stump is smaller" in ln for ln in lines)
    assert any("gate: penguins@2.0.0 vs penguins@1.0.0" in ln and "REFUSED" in ln for ln in lines)
    assert any("flip rate" in ln for ln in lines) and any("rows that got worse" in ln for ln in lines)
    assert "rollback prod: 2.0.0 -> 1.0.0" in lines[-1]
    assert _run(capsys, "history", "penguins", *r, "--at", between.isoformat())[1].strip() == \
        "penguins@prod at " + between.isoformat() + ": 1.0.0"
    assert _run(capsys, "history", "penguins", *r, "--alias", "prod", "--at",
                after_force.strftime("%Y-%m-%dT%H:%M:%S.%f"))[1].strip().endswith(": 2.0.0")  # no zone: UTC
    code, out, _ = _run(capsys, "ls", *r)
    assert "penguins  (prod=1.0.0)" in out and "2.0.0" in out
    assert _run(capsys, "fsck", *r)[0] == 0
    code, out, err = _run(capsys, "verify", "penguins@prod", *r, "--trust", str(keys[1]))
    assert code == 0 and "signed: penguins 1.0.0" in out and "parity: pass" in out, err


def _cell(text: str, kind: str) -> object:
    if text in ("", "NA"):
        return None
    return text if kind == "category" else float(text)


def test_config_compare_rules_travel_in_the_manifest_and_set_the_gate(
        penguins_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`[evaluation.compare]` allows the stump's drop: promotion passes the gate by the config's rule, unforced."""
    from skedge.trainer import train
    from skedge.trainer.config import load_config

    cfg = _stump_config(tmp_path / "penguins_lenient.toml", "3.0.0", "compare = { accuracy = 0.5 }")
    v3 = train(cfg, tmp_path / "models").path
    manifest = json.loads((v3 / "manifest.json").read_text())
    assert manifest["compare"] == {"accuracy": 0.5} and manifest["target"] == "species"
    reg = str(tmp_path / "reg")
    r = ["--registry", reg]
    assert _run(capsys, "registry", "init", reg)[0] == 0
    for b in (penguins_bundle, v3):
        assert _run(capsys, "publish", str(b), *r)[0] == 0
    assert _run(capsys, "promote", "penguins@1.0.0", "--alias", "prod", *r, "--data", str(DATA))[0] == 0
    code, out, err = _run(capsys, "promote", "penguins@3.0.0", "--alias", "prod", *r)
    assert code == 0 and "FORCED" not in out and "penguins@prod -> 3.0.0" in out, err
    # a rule the gate does not measure is a config error, caught before any training
    bad = cfg.read_text().replace("accuracy = 0.5", "acuracy = 0.5")
    cfg.write_text(bad)
    with pytest.raises(Exception, match="acuracy"):
        load_config(cfg)


def test_a_benchmark_the_gate_cannot_read_is_refused(penguins_bundle: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Labels spelled otherwise would score both models 0 (and pass any candidate); three rows say nothing."""
    from .conftest import as_version

    reg = str(tmp_path / "reg")
    r = ["--registry", reg]
    v2 = as_version(penguins_bundle, tmp_path / "v2", "2.0.0")
    assert _run(capsys, "registry", "init", reg)[0] == 0
    for b in (penguins_bundle, v2):
        assert _run(capsys, "publish", str(b), *r)[0] == 0
    lines = DATA.read_text().splitlines(keepends=True)
    caps = tmp_path / "caps.csv"
    caps.write_text(lines[0] + "".join(ln.replace("Adelie", "ADELIE").replace("Gentoo", "GENTOO") for ln in lines[1:]))
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("".join(lines[:4]))
    for bad, words in ((caps, "labels the model never answers: 'ADELIE', 'GENTOO'"), (tiny, "3 labelled rows")):
        code, _, err = _run(capsys, "promote", "penguins@1.0.0", "--alias", "prod", *r, "--data", str(bad))
        assert code == 1 and words in err and err.count("\n") == 1, err
    assert _run(capsys, "promote", "penguins@1.0.0", "--alias", "prod", *r, "--data", str(DATA))[0] == 0
    for bad, words in ((caps, "labels the model never answers"), (tiny, "too few for the gate")):
        code, _, err = _run(capsys, "promote", "penguins@2.0.0", "--alias", "prod", *r, "--data", str(bad))
        assert code == 1 and words in err, err
    code, _, err = _run(capsys, "promote", "penguins@2.0.0", "--alias", "prod", *r, "--max-drop", "accuracy=-1")
    assert code == 1 and "0 or more" in err, err
    assert _run(capsys, "resolve", "penguins@prod", *r)[1].strip().endswith("1.0.0")  # nothing moved
    # the stored benchmark is still the good one: the same model under another version passes on it
    assert _run(capsys, "promote", "penguins@2.0.0", "--alias", "prod", *r)[0] == 0
