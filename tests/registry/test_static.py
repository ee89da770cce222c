"""`skedge registry export-static`: a signed channel.json per alias, the bundles beside it, updated in place
with the bundle files first and channel.json last (each under a temporary name, renamed)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from skedge.runtime import BundleError

from .conftest import as_version


@pytest.fixture
def reg(penguins_bundle: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    """A registry that requires signatures, penguins 1.0.0 then 2.0.0 promoted to prod."""
    from skedge.registry import init_registry, promote, publish
    from skedge.runtime.signing import sign_bundle

    root = init_registry(tmp_path / "reg", require_signatures=keys[1])
    for v in ("1.0.0", "2.0.0"):
        b = as_version(penguins_bundle, tmp_path / f"b{v}", v)
        sign_bundle(b, keys[0])
        publish(b, root)
    promote(root, "penguins", "1.0.0", "prod", key=keys[0])
    promote(root, "penguins", "2.0.0", "prod", key=keys[0], force=True, reason="test")
    return root


def _payload(channel: Path, keys: tuple[Path, Path]) -> dict[str, Any]:
    from skedge.runtime._channel import CHANNEL_TYPE
    from skedge.runtime.signing import Envelope, dsse_open, trusted_key

    env = Envelope.from_json(json.loads(channel.read_bytes()), str(channel))
    return json.loads(dsse_open(env, trusted_key(keys[1]), str(channel), payload_type=CHANNEL_TYPE))


def _tree(d: Path) -> dict[str, dict[str, Any]]:
    return {p.relative_to(d).as_posix(): {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                                          "size": p.stat().st_size} for p in sorted(d.rglob("*")) if p.is_file()}


def test_the_channel_names_the_holder_every_file_and_the_previous_holder(reg: Path, keys: tuple[Path, Path],
                                                                         tmp_path: Path) -> None:
    from skedge.registry import history
    from skedge.registry.static import export_static

    out = tmp_path / "site"
    (done,) = export_static(reg, "penguins", out, key=keys[0], rollout=0.25)
    assert done.channel == out / "penguins" / "prod" / "channel.json"
    p = _payload(done.channel, keys)
    log = history(reg, "penguins")
    assert isinstance(log, list)
    assert (p["name"], p["alias"], p["version"], p["sequence"], p["type"]) == \
        ("penguins", "prod", "2.0.0", log[-1]["sequence"], "promote")
    assert p["rollout"] == 0.25 and p["expires"] is None
    for entry, version in ((p, "2.0.0"), (p["previous"], "1.0.0")):
        assert entry["version"] == version
        stored = reg / "bundles" / entry["digest"]
        # sha256 and size of every file, as the registry stores it, and the same bytes beside the channel
        assert entry["files"] == _tree(stored) and "signature.json" in entry["files"]
        assert _tree(out / "penguins" / entry["bundle"]) == _tree(stored)
    assert not [n for n in os.listdir(out / "penguins" / "prod") if n != "channel.json"]  # no temporary left


def test_a_changed_channel_fails_its_signature(reg: Path, keys: tuple[Path, Path], other_keys: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    from skedge.registry.static import export_static

    (done,) = export_static(reg, "penguins", tmp_path / "site", key=keys[0])
    env = json.loads(done.channel.read_text())
    import base64

    body = json.loads(base64.b64decode(env["payload"]))
    body["version"] = "1.0.0"
    env["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    done.channel.write_text(json.dumps(env))
    with pytest.raises(BundleError, match="the signature does not match"):
        _payload(done.channel, keys)
    with pytest.raises(BundleError, match="signed by another key"):
        _payload(done.channel, other_keys)


def test_an_update_in_place_writes_bundle_files_first_and_the_channel_last(
        reg: Path, keys: tuple[Path, Path], penguins_bundle: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import skedge.registry.static as static
    from skedge.registry import promote, publish
    from skedge.runtime.signing import sign_bundle

    out = tmp_path / "site"
    static.export_static(reg, "penguins", out, key=keys[0])
    b = as_version(penguins_bundle, tmp_path / "b3", "3.0.0")
    sign_bundle(b, keys[0])
    digest = publish(b, reg).digest
    promote(reg, "penguins", "3.0.0", "prod", key=keys[0], force=True, reason="test")
    written: list[Path] = []
    real = static._write_atomic

    def spy(path: Path, data: bytes) -> None:
        # what a reader polling now would see: every file the current channel names is already whole
        names = _payload(out / "penguins" / "prod" / "channel.json", keys)
        for rel, meta in names["files"].items():
            f = out / "penguins" / names["bundle"] / rel
            assert hashlib.sha256(f.read_bytes()).hexdigest() == meta["sha256"]
        written.append(path)
        real(path, data)

    monkeypatch.setattr(static, "_write_atomic", spy)
    (done,) = static.export_static(reg, "penguins", out, key=keys[0])
    assert written[-1] == done.channel and written.count(done.channel) == 1
    new_files = written[:-1]
    # only the new holder's files were written (2.0.0, now the previous holder, was there already)
    assert new_files and all(f"bundles/{digest}/" in p.as_posix() for p in new_files)
    assert done.files_written == len(new_files) == len(_tree(reg / "bundles" / digest))
    assert _payload(done.channel, keys)["version"] == "3.0.0"
    leftovers = [p for p in out.rglob("*") if ".tmp-" in p.name]
    assert not leftovers


def test_refusals(reg: Path, keys: tuple[Path, Path], other_keys: tuple[Path, Path], tmp_path: Path) -> None:
    from skedge.registry.static import export_static

    with pytest.raises(BundleError, match="must be signed too; give --key"):
        export_static(reg, "penguins", tmp_path / "a")
    with pytest.raises(BundleError, match="is not the key"):
        export_static(reg, "penguins", tmp_path / "b", key=other_keys[0])
    with pytest.raises(BundleError, match="a share between 0 and 1"):
        export_static(reg, "penguins", tmp_path / "c", key=keys[0], rollout=1.5)
    with pytest.raises(BundleError, match="no version of 'penguins' holds the alias 'beta'"):
        export_static(reg, "penguins", tmp_path / "d", key=keys[0], aliases=["beta"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli(reg: Path, keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    out = tmp_path / "site"
    code = main(["registry", "export-static", "--registry", str(reg), "penguins", "--out", str(out),
                 "--key", str(keys[0]), "--expires", "2030-01-01"])
    o = capsys.readouterr()
    assert code == 0, o.err
    assert "penguins@prod -> 2.0.0 (sequence 2)" in o.out
    assert _payload(out / "penguins" / "prod" / "channel.json", keys)["expires"].startswith("2030-01-01T00:00:00")
    code = main(["registry", "export-static", "--registry", str(reg), "penguins", "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "give --key KEY" in err
