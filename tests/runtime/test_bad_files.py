"""Bad files: truncated, bit-flipped, random bytes, hashes that do not match, opsets onnxruntime cannot run.

Each gives a BundleError whose message names the file and says what a person can do about it. A bundle
is protected by its manifest's hashes, so any change to a file it runs is caught. A bare .onnx has no
hashes: a flipped bit there is caught only when it breaks the file, so for bare files the promise
tested is the weaker one, "BundleError or a working model, never a crash".
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skedge.runtime import BundleError, SkedgeError, load

ACTION = ("export it again", "restore it", "upgrade onnxruntime", "upgrade skedge", "export the model again")


@pytest.fixture()
def bundle(penguins_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the penguins bundle, free to damage."""
    return Path(shutil.copytree(penguins_bundle, tmp_path / "penguins" / "1.0.0"))


def _manifest(b: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((b / "manifest.json").read_text())
    return data


def _rehash(b: Path, name: str) -> None:
    """Make the manifest agree with a damaged file: what a careless copy tool or an attacker would do."""
    m = _manifest(b)
    data = (b / name).read_bytes()
    m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (b / "manifest.json").write_text(json.dumps(m))


def _refused(action: Callable[[], Any], *words: str) -> str:
    with pytest.raises(BundleError) as info:
        action()
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{w!r} not in: {msg}"
    assert any(a in msg for a in ACTION) or "corrupt" in msg or "tampered" in msg, f"no way forward in: {msg}"
    assert "onnxruntime_src" not in msg and "\n" not in msg, f"C++ noise in: {msg}"
    return msg


# -- bundles ---------------------------------------------------------------------
@pytest.mark.parametrize("target", ["onnx", "ort"])
def test_truncated_model_file(bundle: Path, target: str) -> None:
    f = bundle / f"model.{target}"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    _refused(lambda: load(bundle, target=target), str(f), "truncated")


@pytest.mark.parametrize("where", [0.0, 0.3, 0.5, 0.99])
def test_bit_flipped_model_file(bundle: Path, where: float) -> None:
    f = bundle / "model.onnx"
    data = bytearray(f.read_bytes())
    data[int(len(data) * where)] ^= 0x10
    f.write_bytes(bytes(data))
    _refused(lambda: load(bundle), str(f), "sha256", "changed after export")


def test_random_bytes_with_matching_hashes(bundle: Path) -> None:
    f = bundle / "model.onnx"
    f.write_bytes(np.random.default_rng(0).bytes(f.stat().st_size))
    _rehash(bundle, "model.onnx")
    _refused(lambda: load(bundle), "model.onnx", "not a readable model")


def test_manifest_hash_that_does_not_match(bundle: Path) -> None:
    m = _manifest(bundle)
    m["files"]["model.onnx"]["sha256"] = "9c41" + "0" * 60
    (bundle / "manifest.json").write_text(json.dumps(m))
    _refused(lambda: load(bundle), "model.onnx does not match its manifest", "expected 9c410000")


@pytest.mark.parametrize("name", ["golden.json", "model.ort", "card.md", "report/parity.md"])
def test_every_listed_file_is_checked_on_load(bundle: Path, name: str) -> None:
    f = bundle / name
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    _refused(lambda: load(bundle), name, "sha256", "changed after export")


def test_golden_is_checked_again_when_verify_reads_it(bundle: Path) -> None:
    model = load(bundle)
    golden = bundle / "golden.json"
    golden.write_text(golden.read_text().replace('"Adelie"', '"Gentoo"', 1))  # changed after load
    _refused(model.verify, "golden.json", "changed after export")


@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "not an object", "missing"])
def test_damaged_manifest(bundle: Path, damage: str) -> None:
    f = bundle / "manifest.json"
    if damage == "random":
        f.write_bytes(np.random.default_rng(1).bytes(500))
    elif damage == "truncated":
        f.write_bytes(f.read_bytes()[:200])
    elif damage == "empty":
        f.write_bytes(b"")
    elif damage == "not an object":
        f.write_text("[1, 2, 3]")
    else:
        f.unlink()
    with pytest.raises(BundleError) as info:
        load(bundle)
    assert "manifest.json" in str(info.value)
    assert any(w in str(info.value) for w in ("corrupt", "not a skedge bundle")), info.value


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "a/../../b"])
def test_manifest_naming_files_outside_the_bundle(bundle: Path, name: str) -> None:
    m = _manifest(bundle)
    m["files"][name] = {"sha256": "0" * 64, "size": 1}
    (bundle / "manifest.json").write_text(json.dumps(m))
    _refused(lambda: load(bundle), "outside the bundle", repr(name))


def test_manifest_from_a_newer_skedge(bundle: Path) -> None:
    m = _manifest(bundle)
    m["format"] = 2
    (bundle / "manifest.json").write_text(json.dumps(m))
    _refused(lambda: load(bundle), "bundle format 2", "Upgrade skedge")


@pytest.mark.parametrize("damage", ["renamed feature", "no schema", "unknown kind"])
def test_manifest_schema_that_does_not_fit_the_model(bundle: Path, damage: str) -> None:
    m = _manifest(bundle)
    if damage == "renamed feature":
        m["schema"]["features"][1]["name"] = "beak_length_mm"
    elif damage == "no schema":
        del m["schema"]
    else:
        m["schema"]["features"][0]["kind"] = "colour"
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError) as info:
        load(bundle)
    assert {"renamed feature": '"beak_length_mm"', "no schema": "has no schema",
            "unknown kind": "unknown kind 'colour'"}[damage] in str(info.value)
    if damage == "renamed feature":  # both values named: the manifest's and the model's own
        assert '"bill_length_mm"' in str(info.value) and "the model itself says" in str(info.value)


# -- the model file is the authority (issue 10.4) ---------------------------------
def _tamper(b: Path, change: Callable[[dict[str, Any]], None]) -> None:
    m = _manifest(b)
    change(m)
    (b / "manifest.json").write_text(json.dumps(m))


def _reverse_classes(m: dict[str, Any], top_level: bool = True, schema: bool = True) -> None:
    if top_level:
        m["classes"] = m["classes"][::-1]
    if schema:
        m["schema"]["classes"] = m["schema"]["classes"][::-1]


@pytest.mark.parametrize("where", ["both", "schema only", "top level only"])
@pytest.mark.parametrize("target", ["onnx", "ort"])
def test_manifest_with_reversed_classes_is_refused(bundle: Path, where: str, target: str) -> None:
    """Reversing the class list in the manifest alone would label every probability column wrongly."""
    classes = _manifest(bundle)["classes"]
    assert classes == sorted(classes) and len(set(classes)) == 3  # the test can fail: reversing changes it
    _tamper(bundle, lambda m: _reverse_classes(m, top_level=where != "schema only", schema=where != "top level only"))
    msg = _refused(lambda: load(bundle, target=target), f"model.{target}", "changed after export")
    assert json.dumps(classes[::-1]) in msg and json.dumps(classes) in msg, msg  # both values named


def test_verify_refuses_reversed_classes(bundle: Path) -> None:
    from skedge.exporter.verify import verify_bundle

    _tamper(bundle, _reverse_classes)
    with pytest.raises(BundleError, match="classes"):
        verify_bundle(bundle, report_dir=bundle.parent / "report")


def _swap_outputs(m: dict[str, Any]) -> None:
    out = m["schema"]["outputs"]
    out["label"], out["probabilities"] = out["probabilities"], out["label"]
    m["outputs"] = dict(out)


def test_manifest_with_swapped_outputs_is_refused(bundle: Path) -> None:
    _tamper(bundle, _swap_outputs)
    _refused(lambda: load(bundle), 'outputs.label is "probabilities", the model itself says "label"')


def test_batch_scorer_refuses_a_manifest_that_disagrees_with_the_model(bundle: Path) -> None:
    from skedge.runtime import BatchScorer

    _tamper(bundle, _reverse_classes)
    with pytest.raises(BundleError, match="the model itself says"):
        BatchScorer.load(bundle)


def test_bare_model_with_swapped_outputs_is_refused(penguins_bundle: Path, tmp_path: Path) -> None:
    """A bare .onnx is its own authority, but outputs named for the wrong kind are still refused, not run."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string((penguins_bundle / "model.onnx").read_bytes())
    meta = {p.key: p.value for p in model.metadata_props}
    schema = json.loads(meta["skedge.schema"])
    schema["outputs"]["label"], schema["outputs"]["probabilities"] = "probabilities", "label"
    meta["skedge.schema"] = json.dumps(schema)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    f = tmp_path / "swapped.onnx"
    f.write_bytes(model.SerializeToString())
    _refused(lambda: load(f), str(f), "mixed up", "'probabilities'")


def _deep(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deeply_nested_manifest_is_one_line(bundle: Path, depth: int) -> None:
    (bundle / "manifest.json").write_text(_deep(depth))
    msg = _refused(lambda: load(bundle), "manifest.json", "nested too deeply")
    assert len(msg) < 400


def test_deeply_nested_golden_is_one_line(bundle: Path) -> None:
    (bundle / "golden.json").write_text('{"rows": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _rehash(bundle, "golden.json")  # the hashes agree: only the parser stands between the file and a crash
    model = load(bundle)
    _refused(model.verify, "golden.json", "nested too deeply")


def test_manifest_sha256_is_the_bundle_identity(bundle: Path) -> None:
    want = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    model = load(bundle, manifest_sha256=want)
    assert model.digest == want
    assert load(bundle, manifest_sha256=want.upper()).digest == want  # hex in either case
    other = "0" * 64
    msg = _refused(lambda: load(bundle, manifest_sha256=other), want, other, "not the bundle you asked for")
    # a manifest changed in a way no other check sees (its description) is still another bundle
    _tamper(bundle, lambda m: m.update(description="something else"))
    _refused(lambda: load(bundle, manifest_sha256=want), "not the bundle you asked for")
    assert msg


def test_manifest_sha256_of_a_bare_model_is_refused(penguins_bundle: Path) -> None:
    with pytest.raises(BundleError, match="bare model file"):
        load(penguins_bundle / "model.onnx", manifest_sha256="0" * 64)


def test_verify_does_not_count_golden_rows_as_unseen_categories(bundle: Path, penguins_golden: dict[str, Any]) -> None:
    model = load(bundle)
    known = {f.name: set(f.categories or ()) for f in model.schema.features if f.kind == "category"}
    unseen = sum(1 for r in penguins_golden["rows"] for k, cats in known.items()
                 if isinstance(r.get(k), str) and r[k] not in cats)
    assert unseen > 0  # the golden rows do hold unseen categories (edge rows): the test can fail
    assert model.verify().passed
    assert model.unseen_categories == {}
    model.predict([r for r in penguins_golden["rows"] if any(
        isinstance(r.get(k), str) and r[k] not in cats for k, cats in known.items())][:1])
    assert sum(model.unseen_categories.values()) >= 1  # traffic still counts


def test_missing_model_file(bundle: Path) -> None:
    (bundle / "model.onnx").unlink()
    _refused(lambda: load(bundle), "model.onnx", "missing")


# -- bare model files -----------------------------------------------------------
@pytest.mark.parametrize("suffix", [".onnx", ".ort"])
@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "header only"])
def test_damaged_bare_model(penguins_bundle: Path, tmp_path: Path, suffix: str, damage: str) -> None:
    data = (penguins_bundle / f"model{suffix}").read_bytes()
    bad = {"truncated": data[: len(data) // 3], "random": np.random.default_rng(2).bytes(len(data)),
           "empty": b"", "header only": data[:16]}[damage]
    f = tmp_path / f"model{suffix}"
    f.write_bytes(bad)
    _refused(lambda: load(f), str(f))


def test_bare_model_with_flipped_bits_never_crashes(penguins_bundle: Path, tmp_path: Path,
                                                   penguins_golden: dict[str, Any]) -> None:
    """Without a manifest a flipped bit may go unnoticed (use bundles!); it must still never crash."""
    data = (penguins_bundle / "model.onnx").read_bytes()
    rng = np.random.default_rng(3)
    refused = 0
    for k in range(60):
        b = bytearray(data)
        for _ in range(3):
            b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
        f = tmp_path / f"flip{k}.onnx"
        f.write_bytes(bytes(b))
        try:
            model = load(f)
            model.predict_proba(penguins_golden["rows"][:50])
        except SkedgeError:
            refused += 1
    assert refused > 0  # the damage does get noticed, at least where it breaks the file


def _tiny_model(tmp_path: Path, *, opsets: dict[str, int], ir_version: int = 10) -> Path:
    """A one-feature skedge model (Identity), stamped with the given opsets: onnx builds it, the runtime loads it."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 1])
    y = helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["variable"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              ir_version=ir_version)
    schema = {"format": 1, "task": "regression", "features": [{"name": "x", "kind": "number"}],
              "outputs": {"value": "variable"}}
    helper.set_model_props(model, {"skedge.schema": json.dumps(schema), "skedge.format": "1"})
    stamp = "_".join(f"{d or 'ai.onnx'}-{v}" for d, v in opsets.items())
    f = tmp_path / f"tiny_{stamp}_ir{ir_version}.onnx"
    f.write_bytes(model.SerializeToString())
    return f


def test_tiny_model_loads_when_its_opset_is_supported(tmp_path: Path) -> None:
    model = load(_tiny_model(tmp_path, opsets={"": 17}))  # the control: the same file, a supported opset
    assert model.predict({"x": 2.5}) == 2.5


@pytest.mark.parametrize(("opsets", "words"), [
    ({"": 30}, ["opset 30 of ai.onnx", "upgrade onnxruntime"]),
    ({"": 17, "ai.onnx.ml": 99}, ["opset 99 of ai.onnx.ml", "upgrade onnxruntime"]),
])
def test_opset_newer_than_onnxruntime(tmp_path: Path, opsets: dict[str, int], words: list[str]) -> None:
    import onnxruntime

    f = _tiny_model(tmp_path, opsets=opsets)
    msg = _refused(lambda: load(f), str(f), *words)
    assert f"onnxruntime ({onnxruntime.__version__})" in msg and "runs up to opset" in msg


def test_ir_version_newer_than_onnxruntime(tmp_path: Path) -> None:
    f = _tiny_model(tmp_path, opsets={"": 17}, ir_version=99)
    _refused(lambda: load(f), "IR version 99", "upgrade onnxruntime")


def test_bare_model_without_skedge_metadata(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])])
    f = tmp_path / "plain.onnx"
    f.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(BundleError, match="not exported by skedge"):
        load(f)


@pytest.mark.parametrize("path", ["nowhere", "model.txt"])
def test_paths_that_are_not_models(tmp_path: Path, path: str) -> None:
    p = tmp_path / path
    if path.endswith(".txt"):
        p.write_text("hello")
    with pytest.raises(BundleError):
        load(p)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(min_value=2_000, max_value=300_000), shape=st.sampled_from(["list", "object", "mixed"]),
       closed=st.booleans(), name=st.sampled_from(["manifest.json", "golden.json"]))
def test_any_deep_nesting_is_one_line(tmp_path: Path, depth: int, shape: str, closed: bool, name: str) -> None:
    """Hostile JSON nested to any depth, valid or cut short: a one-line BundleError naming the file, never a
    RecursionError (manifest.json through read_bundle, golden.json through the parser verify() uses)."""
    from skedge.runtime._bundle import _parse_json, read_bundle

    opener, closer = {"list": ("[", "]"), "object": ('{"k": ', "}"), "mixed": ('[{"a": ', "}]")}[shape]
    raw = (opener * depth + "1" + (closer * depth if closed else "")).encode()
    d = tmp_path / f"b{depth}{shape}{closed}{name}"
    d.mkdir(exist_ok=True)
    f = d / name
    f.write_bytes(raw)
    with pytest.raises(BundleError) as info:
        if name == "manifest.json":
            read_bundle(d)
        else:
            _parse_json(raw, f)
    msg = str(info.value)
    assert str(f) in msg and "\n" not in msg and len(msg) < 500, msg
