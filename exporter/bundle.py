"""Writing a bundle: every file into a temporary sibling directory, then one rename.

A reader therefore sees either no version or a complete one; a failed export
leaves nothing behind, and an existing version is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from skedge.runtime._bundle import BUNDLE_FORMAT
from skedge.runtime._errors import ExportError

__all__ = ["write_bundle", "check_version", "bundle_path", "SEMVER"]

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_version(name: str, version: str) -> None:
    if not _NAME.match(name):
        raise ExportError(f"model name {name!r}: use letters, digits, '.', '_' and '-' (it becomes a folder name)")
    if not SEMVER.match(version):
        raise ExportError(f"version {version!r} is not a semantic version such as 1.0.0")


def bundle_path(out: str | os.PathLike[str], name: str, version: str) -> Path:
    return Path(out) / name / version


def write_bundle(out: str | os.PathLike[str], name: str, version: str, files: dict[str, bytes],
                 manifest: dict[str, Any]) -> Path:
    """Write ``files`` plus ``manifest.json`` (with sha256 and size of each) to ``out/name/version``."""
    check_version(name, version)
    final = bundle_path(out, name, version)
    if final.exists():
        raise ExportError(f"{final} already exists: a published version is never overwritten; "
                          "choose a new version (e.g. bump the patch number)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".partial", dir=final.parent))
    try:
        listing = {}
        for rel, data in sorted(files.items()):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            listing[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        doc = {"format": BUNDLE_FORMAT, "name": name, "version": version, **manifest, "files": listing}
        (tmp / "manifest.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n",
                                           encoding="utf-8")
        tmp.chmod(0o755)
        try:
            os.rename(tmp, final)  # atomic on one filesystem; fails if another writer got there first
        except OSError:
            if final.exists():
                raise ExportError(f"{final} already exists: a published version is never overwritten") from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
