"""Fixtures for signing and registry tests: keys, bundle copies, and the edits a tamperer would make."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from skedge.runtime.signing import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from skedge.runtime.signing import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("other-keys"))


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's readers remember what they accepted in a directory of their own."""
    d = tmp_path / "reader-state"
    monkeypatch.setenv("SKEDGE_STATE_DIR", str(d))
    return d


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rehash(bundle: Path, edit: Any = None) -> None:
    """Re-hash every listed file into manifest.json (what a consistent tamperer does); ``edit(manifest)`` first."""
    path = bundle / "manifest.json"
    m = json.loads(path.read_text())
    if edit is not None:
        edit(m)
    for name in m["files"]:
        data = (bundle / name).read_bytes()
        m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    path.write_text(json.dumps(m, indent=1, sort_keys=True))


def as_version(src: Path, dst: Path, version: str) -> Path:
    """A copy of ``src`` that claims another version (another identity, the same model)."""
    copy_bundle(src, dst)
    (dst / "signature.json").unlink(missing_ok=True)

    def edit(m: dict[str, Any]) -> None:
        m["version"] = version

    rehash(dst, edit)
    return dst


@pytest.fixture
def signed(penguins_bundle: Path, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    from skedge.runtime.signing import sign_bundle

    b = copy_bundle(penguins_bundle, tmp_path / "signed")
    sign_bundle(b, keys[0])
    return b
