"""Reading a bundle: the manifest, the hashes, the format version.

A bundle is a directory written once by the exporter (DESIGN.md "The bundle").
Every file the manifest lists is hashed on load; a file that does not match
means the bundle was changed after export, and the model is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import BundleError

__all__ = ["BUNDLE_FORMAT", "Bundle", "read_bundle", "sha256_file", "MODEL_FILES"]

BUNDLE_FORMAT = 1
# The files a runtime can execute, in the order ``load`` prefers them.
MODEL_FILES = {"onnx": "model.onnx", "ort": "model.ort"}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return name in self.manifest.get("files", {})

    def golden(self) -> dict[str, Any]:
        if not self.has("golden.json"):
            raise BundleError(f"{self.path} has no golden.json: nothing to verify against")
        return _read_json(self.file("golden.json"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}): the file is corrupt") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path} is not a JSON object: the file is corrupt")
    return data


def read_bundle(path: Path, *, verify_hashes: bool = True) -> Bundle:
    """Read and check a bundle directory; raise ``BundleError`` naming what is wrong."""
    if not path.is_dir():
        raise BundleError(f"{path} is not a bundle directory")
    manifest = _read_json(path / "manifest.json")
    fmt = manifest.get("format")
    if fmt != BUNDLE_FORMAT:
        raise BundleError(
            f"{path}/manifest.json has bundle format {fmt!r}; this skedge reads format {BUNDLE_FORMAT}. "
            "Upgrade skedge, or export the model again with this version."
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{path}/manifest.json lists no files: the manifest is corrupt")
    if verify_hashes:
        for name, meta in sorted(files.items()):
            if "/" in name and ".." in name.split("/"):
                raise BundleError(f"{path}/manifest.json names a file outside the bundle: {name!r}")
            f = path / name
            if not f.is_file():
                raise BundleError(f"{f} is listed in the manifest but missing: the bundle is incomplete")
            size = f.stat().st_size
            if size != meta.get("size"):
                raise BundleError(
                    f"{f} does not match its manifest (size {size} bytes, expected {meta.get('size')}): "
                    "the file was truncated or changed after export"
                )
            digest = sha256_file(f)
            if digest != meta.get("sha256"):
                raise BundleError(
                    f"{f} does not match its manifest (sha256 {digest[:8]}… expected {str(meta.get('sha256'))[:8]}…): "
                    "the file was changed after export"
                )
    return Bundle(path=path, manifest=manifest)
