"""Reading a bundle: the manifest, the hashes, the format version.

A bundle is a directory written once by the exporter (DESIGN.md "The bundle").
A file whose size or sha256 differs from the manifest was changed after export,
and is refused with a ``BundleError`` that says so.

Loading checks every file the manifest lists ("hashes verified", DESIGN.md),
and reads each once: the model's bytes are hashed as they are read, so the
bytes onnxruntime gets are the bytes checked. The other files cost about a
millisecond for a typical bundle (golden.json, the ORT model, the report);
golden.json is checked again when ``verify()`` reads it.

The manifest itself is not listed in the manifest: its sha256 is the bundle's identity (``Bundle.digest``,
printed by ``skedge export``/``inspect``/``verify``, checked by ``load(..., manifest_sha256=)``, and what a
signature covers, issue 13). What the manifest says about the model (schema, classes, outputs) is never
taken on its word: ``model.onnx`` carries the schema in its own metadata and the runtime refuses a manifest
that disagrees (``_model.check_manifest``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ._errors import BundleError

__all__ = ["BUNDLE_FORMAT", "Bundle", "read_bundle", "read_model", "sha256_file", "MODEL_FILES"]

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
    # sha256 of manifest.json's bytes as read: the bundle's identity (it covers every file's sha256)
    digest: str = ""

    @property
    def files(self) -> dict[str, Any]:
        files: dict[str, Any] = self.manifest["files"]
        return files

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return name in self.files

    def _expect(self, name: str) -> tuple[int, str]:
        meta = self.files.get(name)
        if not isinstance(meta, dict) or not isinstance(meta.get("size"), int) \
                or not isinstance(meta.get("sha256"), str):
            raise BundleError(f"{self.path}/manifest.json has no size and sha256 for {name}: "
                              "the manifest is corrupt; export the model again")
        return meta["size"], meta["sha256"]

    def check(self, name: str) -> None:
        """Raise ``BundleError`` unless the file is what the manifest says (streamed, for large files)."""
        size, digest = self._expect(name)
        f = self.file(name)
        if not f.is_file():
            raise BundleError(f"{f} is listed in the manifest but missing: the bundle is incomplete; "
                              "restore it or export it again")
        actual = f.stat().st_size
        _compare(f, actual, size, None, digest)  # a wrong size needs no hashing
        _compare(f, actual, size, sha256_file(f), digest)

    def read(self, name: str) -> bytes:
        """The file's bytes, checked against the manifest's size and sha256 (one read)."""
        size, digest = self._expect(name)
        f = self.file(name)
        try:
            data = f.read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{f} is listed in the manifest but missing: the bundle is incomplete; "
                              "restore it or export it again") from None
        except IsADirectoryError:
            raise BundleError(f"{f} is a directory, not a file: the bundle is damaged; restore it or "
                              "export it again") from None
        _compare(f, len(data), size, hashlib.sha256(data).hexdigest(), digest)
        return data

    def check_all(self, *, skip: str | None = None) -> None:
        """Check every listed file against the manifest (``skip``: one already checked as it was read)."""
        for name in sorted(self.files):
            if name != skip:
                self.check(name)

    def golden(self) -> dict[str, Any]:
        if not self.has("golden.json"):
            raise BundleError(f"{self.path} has no golden.json: nothing to verify against")
        return _parse_json(self.read("golden.json"), self.file("golden.json"))


def _compare(f: Path, size: int, want_size: int, digest: str | None, want: str) -> None:
    if size != want_size:
        raise BundleError(f"{f} does not match its manifest (size {size} bytes, expected {want_size}): "
                          "the file was truncated or changed after export; export it again or restore it")
    if digest is not None and digest != want:
        raise BundleError(f"{f} does not match its manifest (sha256 {digest[:8]}… expected {want[:8]}…): "
                          "the file was changed after export; export it again or restore it")


def _parse_json(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}): the file is corrupt") from None
    except RecursionError:  # json's C decoder recurses per level: a hostile file must not become a traceback
        raise BundleError(f"{path} is nested too deeply to be a skedge file: the file is corrupt or "
                          "hostile; export it again or restore it") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path} is not a JSON object: the file is corrupt")
    return data


def _read_json(path: Path) -> tuple[dict[str, Any], str]:
    """(the parsed object, sha256 of the bytes parsed)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path} is missing") from None
    return _parse_json(raw, path), hashlib.sha256(raw).hexdigest()


def _inside(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def read_bundle(path: Path, *, verify_hashes: bool = True) -> Bundle:
    """Read and check a bundle directory; raise ``BundleError`` naming what is wrong.

    With ``verify_hashes`` every listed file is checked against its size and sha256.
    """
    if not path.is_dir():
        raise BundleError(f"{path} is not a bundle directory")
    if not (path / "manifest.json").is_file():
        raise BundleError(f"{path} is not a skedge bundle: it has no manifest.json "
                          "(a bundle is the directory `skedge train` or `skedge export` wrote)")
    manifest, digest = _read_json(path / "manifest.json")
    fmt = manifest.get("format")
    if fmt != BUNDLE_FORMAT:
        raise BundleError(
            f"{path}/manifest.json has bundle format {fmt!r}; this skedge reads format {BUNDLE_FORMAT}. "
            "Upgrade skedge, or export the model again with this version."
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{path}/manifest.json lists no files: the manifest is corrupt")
    for name in files:
        if not _inside(name):
            raise BundleError(f"{path}/manifest.json names a file outside the bundle: {name!r}; "
                              "the manifest was tampered with")
    bundle = Bundle(path=path, manifest=manifest, digest=digest)
    if verify_hashes:
        bundle.check_all()
    return bundle


def read_model(path: Path, target: str = "onnx") -> tuple[Bundle | None, bytes, str]:
    """(the bundle or None for a bare file, the model's bytes, its target) for ``load`` and the batch scorer.

    A bundle's model file is checked against the manifest as it is read, so onnxruntime gets the
    very bytes that were hashed; the bundle's other files are the caller's business.
    """
    if path.is_dir():
        if target not in MODEL_FILES:
            raise BundleError(f"unknown target {target!r}; expected one of {sorted(MODEL_FILES)}")
        bundle = read_bundle(path, verify_hashes=False)
        model_file = MODEL_FILES[target]
        if not bundle.has(model_file):
            raise BundleError(f"{path} has no {model_file} (the manifest lists {', '.join(sorted(bundle.files))})")
        return bundle, bundle.read(model_file), target
    if not path.exists():
        raise BundleError(f"{path} does not exist")
    if path.suffix not in (".onnx", ".ort"):
        raise BundleError(f"{path} is neither a bundle directory nor a .onnx/.ort model file")
    data = path.read_bytes()
    if not data:
        raise BundleError(f"{path} is empty: the file was truncated; export it again or restore it")
    return None, data, "ort" if path.suffix == ".ort" else "onnx"
