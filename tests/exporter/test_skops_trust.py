"""Loading a user's .skops file never runs code it brings: crafted files, each with a live payload.

Every payload writes a marker file when it runs. Each test first proves the file is live (skops with
every type trusted runs it, in a child process), then asserts skedge refuses it and the marker stays absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skedge.exporter.skops_io import load_pipeline
from skedge.runtime import ExportError

RUNSTRING = ("numpy.testing._private.utils", "runstring")  # exec(astr, dict): a numpy name that runs a string
TREE = "sklearn.tree._tree.Tree"
PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def _json(value: Any) -> dict:
    return {"__class__": type(value).__name__, "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def _tuple(*items: dict) -> dict:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": list(items)}


def _empty_dict() -> dict:
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {}, "key_types":
            {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": []}}


def _code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


def payloads(marker: Path) -> dict[str, dict]:
    module, name = RUNSTRING
    args = _tuple(_json(_code(marker)), _empty_dict())
    return {
        "constructor_from_reduce": {"__class__": name, "__module__": module,
                                    "__loader__": "ConstructorFromReduceNode", "content": args},
        "loss_node": {"__class__": name, "__module__": module, "__loader__": "LossNode",
                      "__reduce__": {"args": args}, "content": _empty_dict()},
    }


def _small_pipeline() -> tuple[Pipeline, pd.DataFrame]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] + X["b"] > 0).astype(int)
    return Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y), X


def _inject(src: Path, dst: Path, node: dict | str) -> None:
    """``src`` with the Pipeline's ``memory`` attribute replaced by ``node`` (a node, or its JSON text)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["content"]["content"]["memory"] = "@NODE@"
                text = node if isinstance(node, str) else json.dumps(node)
                data = json.dumps(schema).replace('"@NODE@"', text).encode()
            zout.writestr(item, data)


def _skops_trusting_everything(path: Path) -> None:
    code = ("import skops.io as s, sys; p = sys.argv[1]; "
            "s.load(p, trusted=s.get_untrusted_types(file=p))")
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pipe, _ = _small_pipeline()
    path = tmp_path_factory.mktemp("skops") / "clean.skops"
    sio.dump(pipe, path)
    return path


@pytest.mark.parametrize("kind", sorted(payloads(Path("x"))))
def test_crafted_file_runs_no_code(kind: str, clean_file: Path, tmp_path: Path) -> None:
    live_marker, marker = tmp_path / "live", tmp_path / "marker"
    _inject(clean_file, tmp_path / "live.skops", payloads(live_marker)[kind])
    _skops_trusting_everything(tmp_path / "live.skops")
    assert live_marker.exists(), "the crafted file is not live: the test would prove nothing"

    evil = tmp_path / "evil.skops"
    _inject(clean_file, evil, payloads(marker)[kind])
    with pytest.raises(ExportError) as err:
        load_pipeline(evil)
    assert not marker.exists()
    msg = str(err.value)
    assert "\n" not in msg and "Nothing was loaded" in msg
    assert f"--trust {'.'.join(RUNSTRING)}" in msg


def test_own_class_name_built_by_a_call_is_not_trusted(clean_file: Path, tmp_path: Path) -> None:
    """skedge trusts its OutlierClipper restored as a plain object, never a call through that name."""
    node = {"__class__": "OutlierClipper", "__module__": "skedge.trainer.features",
            "__loader__": "ConstructorFromReduceNode", "content": _tuple()}
    _inject(clean_file, tmp_path / "f.skops", node)
    with pytest.raises(ExportError, match=r"OutlierClipper \[ConstructorFromReduceNode\]"):
        load_pipeline(tmp_path / "f.skops")


def test_cli_refuses_crafted_file_and_exits_non_zero(clean_file: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.skops"
    _inject(clean_file, evil, payloads(marker)["constructor_from_reduce"])
    _, X = _small_pipeline()
    X.to_csv(tmp_path / "s.csv", index=False)
    res = subprocess.run([sys.executable, "-m", "skedge.cli", "export", str(evil), "--sample", str(tmp_path / "s.csv"),
                          "--name", "evil", "--out", str(tmp_path / "models")], capture_output=True, text=True)
    assert res.returncode != 0
    assert "not trusted by default" in res.stderr and "Traceback" not in res.stderr
    assert not marker.exists() and not (tmp_path / "models" / "evil").exists()


def test_trusting_other_names_does_not_trust_the_payload(clean_file: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.skops"
    _inject(clean_file, evil, payloads(marker)["loss_node"])
    with pytest.raises(ExportError, match="runstring"):
        load_pipeline(evil, trusted=[TREE, "numpy.testing"])  # a prefix is not a name
    assert not marker.exists()


def test_clean_pipeline_loads_with_defaults(clean_file: Path) -> None:
    pipe = load_pipeline(clean_file)
    _, X = _small_pipeline()
    np.testing.assert_array_equal(pipe.predict_proba(X), _small_pipeline()[0].predict_proba(X))


@pytest.fixture(scope="module")
def forest_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, RandomForestClassifier]:
    _, X = _small_pipeline()
    y = (X["a"] > 0).astype(int)
    rf = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("forest") / "rf.skops"
    sio.dump(rf, path)
    return path, X, rf


def test_trees_need_an_explicit_trust(forest_file: tuple) -> None:
    path, X, rf = forest_file
    with pytest.raises(ExportError, match=f"--trust {TREE}"):
        load_pipeline(path)
    loaded = load_pipeline(path, trusted=[TREE])
    np.testing.assert_array_equal(loaded.predict_proba(X), rf.predict_proba(X))


def test_hgb_predictor_needs_an_explicit_trust(tmp_path: Path) -> None:
    _, X = _small_pipeline()
    hgb = HistGradientBoostingClassifier(max_iter=5).fit(X, (X["a"] > 0).astype(int))
    sio.dump(hgb, tmp_path / "hgb.skops")
    with pytest.raises(ExportError, match=PREDICTOR):
        load_pipeline(tmp_path / "hgb.skops")
    loaded = load_pipeline(tmp_path / "hgb.skops", trusted=[PREDICTOR])
    np.testing.assert_array_equal(loaded.predict_proba(X), hgb.predict_proba(X))


@pytest.mark.parametrize("field,value", [("left_child", 10_000), ("right_child", 0), ("feature", 99)])
def test_trusted_tree_with_out_of_bounds_nodes_is_refused(forest_file: tuple, tmp_path: Path,
                                                           field: str, value: int) -> None:
    """A trusted Tree is still checked: sklearn would index these arrays without bounds checks."""
    path, _, _ = forest_file
    crafted = tmp_path / "crafted.skops"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(crafted, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith(".npy"):
                arr = np.load(__import__("io").BytesIO(data), allow_pickle=False)
                if arr.dtype.names and field in arr.dtype.names:
                    arr = arr.copy()
                    arr[field][0] = value
                    buf = __import__("io").BytesIO()
                    np.save(buf, arr, allow_pickle=False)
                    data = buf.getvalue()
            zout.writestr(item, data)
    with pytest.raises(ExportError, match="points outside the tree or the input"):
        load_pipeline(crafted, trusted=[TREE])


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x03\x04garbage", b""])
def test_damaged_files_are_one_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.skops").write_bytes(content)
    with pytest.raises(ExportError, match="not a readable skops file") as err:
        load_pipeline(tmp_path / "bad.skops")
    assert "\n" not in str(err.value)


def test_deeply_nested_schema_is_refused_without_recursion_error(clean_file: Path, tmp_path: Path) -> None:
    opening = '{"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": ['
    node = opening * 5_000 + json.dumps(_json(1)) + "]}" * 5_000
    _inject(clean_file, tmp_path / "deep.skops", node)
    with pytest.raises(ExportError):
        load_pipeline(tmp_path / "deep.skops")


def test_dtype_name_built_another_way_is_not_trusted(clean_file: Path, tmp_path: Path) -> None:
    node = {"__class__": "dtype", "__module__": "numpy", "__loader__": "ConstructorFromReduceNode",
            "content": _tuple(_json("float64"))}
    _inject(clean_file, tmp_path / "f.skops", node)
    with pytest.raises(ExportError, match=r"numpy.dtype \[ConstructorFromReduceNode\]"):
        load_pipeline(tmp_path / "f.skops")
