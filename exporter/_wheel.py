"""The model as a wheel: the bundle as package data under a loader of a few lines that imports only
``skedge.runtime``.

Written with zipfile rather than a build backend: the wheel format (PEP 427, binary distribution format) is a
zip with three dist-info files, and writing it here makes the bytes a function of the bundle alone (sorted
entries, fixed timestamps and modes, one compression level), so two builds of a bundle are the same file.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from skedge import __version__ as SKEDGE_VERSION

__all__ = ["build_wheel", "skedge_requirement", "LOADER"]

# zip's epoch: the earliest time a zip entry can hold; any fixed time would do
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MODE = 0o644 << 16
# the semver pre-releases PEP 440 has a spelling for
_PEP440_ABLE = re.compile(r"^(\d+\.\d+\.\d+)(?:-(alpha|a|beta|b|rc)\.?(\d+))?$")
_PRE = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "rc": "rc"}

LOADER = '''"""{name} {version}: the skedge model {model!r} as a package (made by `skedge package`).

    import {module}
    {module}.predict(row)            # one row (a dict) -> one answer; a list of rows -> an array
    {module}.load(trust="key.pub")   # optional, first: also require the bundle's signature by that key

The bundle is package data ({module}/bundle/); the first load checks every file against its manifest (and
the signature, when a key is given) before the model runs. Needs skedge's runtime only (numpy, onnxruntime).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from skedge.runtime import Model, Schema
from skedge.runtime import load as _load

__all__ = ["load", "predict", "predict_proba", "verify", "schema", "classes", "BUNDLE", "MANIFEST_SHA256",
           "__version__"]

__version__ = {version!r}
MODEL_NAME = {model!r}
# the identity of the bundle this package was built from: load() refuses any other manifest
MANIFEST_SHA256 = {digest!r}
BUNDLE = Path(__file__).resolve().parent / "bundle"

_lock = threading.Lock()
_model: Model | None = None


def load(*, trust: Any = None, target: str = "onnx", threads: int | None = None,
         state_dir: str | os.PathLike[str] | None = None) -> Model:
    """The model, loaded and checked once (every file's sha256; with ``trust``, a public key, the signature
    first). A call with ``trust`` checks again and keeps that model."""
    global _model
    with _lock:
        if _model is None or trust is not None:
            _model = _load(BUNDLE, target=target, threads=threads, manifest_sha256=MANIFEST_SHA256, trust=trust,
                           state_dir=state_dir)
        return _model


def predict(rows: Any) -> Any:
    return load().predict(rows)


def predict_proba(rows: Any) -> Any:
    return load().predict_proba(rows)


def verify() -> Any:
    """The bundle's golden rows through this installation: a parity report."""
    return load().verify()


def __getattr__(name: str) -> Any:
    # the schema comes from the checked bundle, so asking for it loads the model first
    if name == "schema":
        schema: Schema = load().schema
        return schema
    if name == "classes":
        return load().classes
    raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
'''


def skedge_requirement() -> str:
    """The skedge this package needs: at least the one that built it, below its next breaking release."""
    parts = [int(p) for p in SKEDGE_VERSION.split(".")[:3]]
    major, minor = parts[0], parts[1]
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"  # 0.x: a minor release may break
    return f"skedge<{upper},>={SKEDGE_VERSION}"


def _pep440(version: str) -> str:
    """semver -> the same version as PEP 440 spells it (1.0.0-rc.1 -> 1.0.0rc1); build metadata dropped."""
    m = _PEP440_ABLE.match(version.split("+", 1)[0])
    if m is None:
        from skedge.runtime import BundleError

        raise BundleError(f"version {version!r} has no Python spelling (PEP 440): use MAJOR.MINOR.PATCH with an "
                          "optional -alpha.N, -beta.N or -rc.N")
    core, pre, n = m.group(1), m.group(2), m.group(3)
    return ".".join(str(int(p)) for p in core.split(".")) + (f"{_PRE[pre]}{int(n)}" if pre else "")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _metadata(dist: str, version: str, manifest: dict[str, Any], card: bytes | None) -> str:
    task = (manifest.get("schema") or {}).get("task", manifest.get("task"))
    req = skedge_requirement()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {dist}",
        f"Version: {version}",
        f"Summary: the skedge model {manifest.get('name')} {manifest.get('version')} ({task}), with its loader",
        "Requires-Python: >=3.10",
        f"Requires-Dist: {req}",
        # a reader that checks signatures (load(trust=...)) needs cryptography: skedge's sign extra
        "Provides-Extra: sign",
        f'Requires-Dist: {req.replace("skedge", "skedge[sign]", 1)}; extra == "sign"',
    ]
    if card is not None:
        lines.append("Description-Content-Type: text/markdown")
        return "\n".join(lines) + "\n\n" + card.decode("utf-8", "replace")
    return "\n".join(lines) + "\n"


def wheel_entries(files: dict[str, bytes], manifest: dict[str, Any], digest: str,
                  dist: str) -> tuple[str, dict[str, bytes]]:
    """(the wheel's file name, its entries by archive name, RECORD included)."""
    module = dist.replace("-", "_")
    version = _pep440(str(manifest.get("version")))
    info = f"{module}-{version}.dist-info"
    loader = LOADER.format(name=dist, version=version, model=str(manifest.get("name")), module=module,
                           digest=digest)
    entries: dict[str, bytes] = {f"{module}/__init__.py": loader.encode("utf-8"), f"{module}/py.typed": b""}
    for n, data in files.items():
        entries[f"{module}/bundle/{n}"] = data
    entries[f"{info}/METADATA"] = _metadata(dist, version, manifest, files.get("card.md")).encode("utf-8")
    entries[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: skedge {SKEDGE_VERSION}\nRoot-Is-Purelib: true\n"
                                "Tag: py3-none-any\n").encode("ascii")
    entries[f"{info}/skedge.json"] = (json.dumps({"model": manifest.get("name"), "version": manifest.get("version"),
                                                  "manifest_sha256": digest}, sort_keys=True) + "\n").encode("utf-8")
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in sorted(entries.items()))
    entries[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode("utf-8")
    return f"{module}-{version}-py3-none-any.whl", entries


def build_wheel(files: dict[str, bytes], manifest: dict[str, Any], digest: str, dist: str, out: Path) -> Path:
    """Write the wheel into ``out`` (replacing one of the same name whole) and return its path."""
    from .bundle import atomic_write

    filename, entries = wheel_entries(files, manifest, digest, dist)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        # dist-info last, RECORD at the very end, as installers expect to find it
        order = sorted(entries, key=lambda n: (".dist-info/" in n, n.endswith("/RECORD"), n))
        for n in order:
            zi = zipfile.ZipInfo(n, date_time=_EPOCH)
            zi.external_attr = _MODE
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.create_system = 3  # unix, so the mode above is read as one
            zf.writestr(zi, entries[n], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    path = out / filename
    atomic_write(path, buf.getvalue())
    return path
