"""The config is validated before any work: typos, bad enums, bad parameters, each named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skedge.runtime import ConfigError
from skedge.trainer import config_json_schema, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = """
name = "t"
[data]
path = "{data}"
target = "species"
[model]
estimator = "random_forest"
"""


def _write(tmp_path: Path, text: str, suffix: str = ".toml") -> Path:
    p = tmp_path / f"c{suffix}"
    p.write_text(text.replace("{data}", str(EXAMPLES / "penguins.csv")))
    return p


def test_examples_load_and_toml_equals_yaml() -> None:
    toml = load_config(EXAMPLES / "penguins.toml")
    yaml = load_config(EXAMPLES / "penguins.yaml")
    assert toml.model_dump() == yaml.model_dump()
    assert toml.evaluation.gates["accuracy"] == 0.95
    assert toml.data_path() == EXAMPLES / "penguins.csv"  # relative to the config file


def test_typo_names_the_key_and_its_place(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "[evaluation]\nholduot = 0.3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "unknown key 'holdout'" not in msg
    assert "unknown key 'holduot' at evaluation.holduot" in msg
    assert "holdout" in msg  # the allowed keys are listed


def test_typo_at_top_level(tmp_path: Path) -> None:
    p = _write(tmp_path, "seeed = 3\n" + BASE)
    with pytest.raises(ConfigError, match="unknown key 'seeed' at seeed"):
        load_config(p)


def test_bad_enum_names_the_allowed_values(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "[features]\nnumeric_impute = 'mode'\n")
    with pytest.raises(ConfigError, match=r"features.numeric_impute = 'mode' is not allowed; expected 'median' or "
                                          r"'mean'"):
        load_config(p)


def test_out_of_range_value(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "[evaluation]\nholdout = 1.5\n")
    with pytest.raises(ConfigError, match=r"evaluation.holdout = 1.5: Input should be less than 0.9"):
        load_config(p)


def test_unknown_estimator_and_parameter(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE.replace("random_forest", "random_forrest"))
    with pytest.raises(ConfigError, match="'random_forrest' is not in the registry; expected one of .*random_forest"):
        load_config(p)
    p = _write(tmp_path, BASE + "params = { n_estimator = 10 }\n")
    with pytest.raises(ConfigError, match="model.params.n_estimator is not a parameter of RandomForestClassifier"):
        load_config(p)
    p = _write(tmp_path, BASE + "params = { n_estimators = -3 }\n")
    with pytest.raises(ConfigError, match="'n_estimators' parameter of RandomForestClassifier must be"):
        load_config(p)


def test_yaml_errors_too(tmp_path: Path) -> None:
    text = "name: t\ndata: {path: x.csv, target: y}\nmodel: {estimator: ridge}\nexport: {targts: [onnx]}\n"
    p = _write(tmp_path, text, ".yaml")
    with pytest.raises(ConfigError, match="unknown key 'targts' at export.targts"):
        load_config(p)


def test_json_schema_describes_the_config() -> None:
    schema = config_json_schema()
    assert schema["properties"]["data"]["$ref"].endswith("DataConfig")
    assert "base_dir" not in schema["properties"]
    assert schema["$defs"]["FeaturesConfig"]["additionalProperties"] is False
    out = subprocess.run([sys.executable, "-m", "skedge.cli", "config-schema"], capture_output=True, text=True)
    assert out.returncode == 0
    assert json.loads(out.stdout)["title"] == "skedge training config"


def test_cli_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "[evaluation]\nholduot = 0.3\n")
    out = subprocess.run([sys.executable, "-m", "skedge.cli", "train", str(p), "--out", str(tmp_path / "m")],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and "holduot" in out.stderr
    assert not (tmp_path / "m").exists()


def test_gate_out_of_range_or_unknown(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "[evaluation.gates]\naccuracy = 1.5\n")
    with pytest.raises(ConfigError, match=r"evaluation.gates = .*a gate on accuracy must lie in \[0.0, 1.0\], got 1.5"):
        load_config(p)
    p = _write(tmp_path, BASE + "[evaluation.gates]\naccuracyy = 0.9\n")
    with pytest.raises(ConfigError, match="unknown metric 'accuracyy'; gates take accuracy"):
        load_config(p)


@pytest.mark.parametrize("line,words", [('drop = ["species"]', "data.drop names the target 'species'"),
                                        ('kinds = { species = "category" }', "data.kinds names the target")])
def test_the_target_is_never_dropped_or_given_a_kind(tmp_path: Path, line: str, words: str) -> None:
    p = _write(tmp_path, BASE.replace('target = "species"', f'target = "species"\n{line}'))
    with pytest.raises(ConfigError, match=words) as exc:
        load_config(p)
    assert "\n" not in str(exc.value)


def test_compare_rules_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the gate against the previous version measures"):
        load_config(_write(tmp_path, BASE + "[evaluation]\ncompare = { f1 = 0.1 }\n"))
    with pytest.raises(ConfigError, match="0 or more"):
        load_config(_write(tmp_path, BASE + "[evaluation]\ncompare = { accuracy = -0.1 }\n"))
    cfg = load_config(_write(tmp_path, BASE + "[evaluation]\ncompare = { accuracy = 0.02, r2 = 0.1 }\n"))
    assert dict(cfg.evaluation.compare) == {"accuracy": 0.02, "r2": 0.1}
