"""Writing a bundle: every file into a temporary sibling directory, then one rename.

A reader therefore sees either no version or a complete one; a failed export
leaves nothing behind, and an existing version is never overwritten. Every file
is fsynced before the rename and the directory after it, so a power cut or a
full disk leaves no version with empty or short files (``atomic_write`` does the
same for one file: temp name, fsync, rename). The temporary directory's name
carries the writer's pid, so that the next export into the same place can tell
the leftovers of a killed run from a live one and remove them
(``skedge.runtime._stale``).
"""

from __future__ import annotations

import contextlib
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
from skedge.runtime._stale import remove_stale

__all__ = ["write_bundle", "check_version", "bundle_path", "atomic_write", "manifest_bytes", "SEMVER",
           "PARTIAL_SUFFIX"]

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # as the registry's names; 300 letters was an OSError
PARTIAL_SUFFIX = ".partial"


def check_version(name: str, version: str) -> None:
    # fullmatch: '$' alone also matches before a final newline, and '1.0.0\n' became a folder name
    if not _NAME.fullmatch(name):
        raise ExportError(f"model name {name!r}: use up to 100 letters, digits, '.', '_' and '-' (it becomes a folder "
                          "name)")
    if not SEMVER.fullmatch(version):
        raise ExportError(f"version {version!r} is not a semantic version such as 1.0.0")


def bundle_path(out: str | os.PathLike[str], name: str, version: str) -> Path:
    return Path(out) / name / version


def _fsync_dir(path: Path) -> None:
    # a rename is durable only once its directory is; not every platform lets a directory be opened
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``path`` whole or not at all: a temporary name beside it, fsync, rename, fsync the directory.

    On a full disk (or any failure) the temporary file is removed and an existing ``path`` keeps its old
    content: never a 0-byte or half-written file under the real name.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    try:
        _write_synced(tmp, data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def manifest_bytes(doc: dict[str, Any]) -> bytes:
    """manifest.json's bytes: sorted keys, so that its sha256 (the bundle's identity) is reproducible."""
    return (json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def write_bundle(out: str | os.PathLike[str], name: str, version: str, files: dict[str, bytes],
                 manifest: dict[str, Any]) -> Path:
    """Write ``files`` plus ``manifest.json`` (with sha256 and size of each) to ``out/name/version``."""
    check_version(name, version)
    final = bundle_path(out, name, version)
    if final.exists():
        raise ExportError(f"{final} already exists: a published version is never overwritten; "
                          "choose a new version (e.g. bump the patch number)")
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final.parent, ".", PARTIAL_SUFFIX)  # what killed exports left here
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.{os.getpid()}-", suffix=PARTIAL_SUFFIX, dir=final.parent))
    try:
        listing = {}
        for rel, data in sorted(files.items()):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_synced(target, data)
            listing[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        doc = {"format": BUNDLE_FORMAT, "name": name, "version": version, **manifest, "files": listing}
        _write_synced(tmp / "manifest.json", manifest_bytes(doc))
        for d in sorted({(tmp / rel).parent for rel in files} | {tmp}, key=lambda p: -len(p.parts)):
            _fsync_dir(d)
        tmp.chmod(0o755)
        try:
            os.rename(tmp, final)  # atomic on one filesystem; fails if another writer got there first
        except OSError:
            if final.exists():
                raise ExportError(f"{final} already exists: a published version is never overwritten") from None
            raise
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
