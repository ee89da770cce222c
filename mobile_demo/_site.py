"""What the demo site is made of: the page (package data), onnxruntime-web (from npm), the bundle's model.

A site is a mapping from URL path to content, so that serving it (``_server``) and writing it as a static
folder (``write_site``) cannot drift apart. Standard library and ``skedge.runtime`` only: a runtime-only
install can run ``skedge demo``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from skedge import __version__
from skedge.runtime._bundle import read_bundle
from skedge.runtime._errors import BundleError

__all__ = [
    "PAGE_FILES",
    "RUNTIME_FILES",
    "RUNTIME_ENV",
    "MIME_TYPES",
    "Runtime",
    "page_dir",
    "find_runtime",
    "site_files",
    "write_site",
]

# The page, exactly these files: the folder also holds Python, package.json and (after npm ci) node_modules,
# none of which a browser needs.
PAGE_FILES = (
    "index.html",
    "app.js",
    "skedge.js",
    "skedge-core.js",
    "sw.js",
    "style.css",
    "manifest.webmanifest",
    "icon.svg",
    "icon-maskable.svg",
)
# onnxruntime-web's wasm-only ES module, its Emscripten glue and the binary (14 MB): what the page imports.
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# Bundle files the page reads; golden.json feeds the page's "check in this browser".
_BUNDLE_FILES = ("manifest.json", "model.onnx", "golden.json", "explain.onnx")  # explain: the chart
RUNTIME_ENV = "SKEDGE_ONNXRUNTIME_WEB"

MIME_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    # WebAssembly.instantiateStreaming refuses anything else
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
}

Content = Path | bytes


@dataclass(frozen=True)
class Runtime:
    """An installed onnxruntime-web: the folder holding ``RUNTIME_FILES`` and its version."""

    dir: Path
    version: str


def page_dir() -> Path:
    """The folder of the page's sources (this package)."""
    return Path(__file__).resolve().parent


def _pinned_version() -> str:
    try:
        pkg = json.loads((page_dir() / "package.json").read_text(encoding="utf-8"))
        return str(pkg["dependencies"]["onnxruntime-web"])
    except (OSError, ValueError, KeyError):
        return "1.30.0"


def _missing_message(looked: list[Path]) -> str:
    demo = page_dir()
    pin = _pinned_version()
    return (
        "onnxruntime-web is not installed for the demo page (looked in "
        + ", ".join(str(p) for p in looked)
        + "). It comes from npm and never ships inside the Python package (its wasm is 14 MB). Get it with "
        f"Node.js 18+: `npm ci --omit=dev --prefix {demo}`; or install it anywhere, "
        f"`npm install onnxruntime-web@{pin} --prefix ~/.cache/skedge-web`, and point skedge at it: "
        f"`export {RUNTIME_ENV}=~/.cache/skedge-web/node_modules/onnxruntime-web/dist`."
    )


def find_runtime() -> Runtime:
    """onnxruntime-web's files: ``$SKEDGE_ONNXRUNTIME_WEB`` if set, else the page folder's ``node_modules``.

    Raises ``FileNotFoundError`` saying exactly how to install it.
    """
    env = os.environ.get(RUNTIME_ENV)
    if env:
        # an explicit choice is the only place looked: falling back would hide a typo
        given = Path(env).expanduser()
        candidates = [given, given / "dist", given / "node_modules" / "onnxruntime-web" / "dist"]
    else:
        candidates = [page_dir() / "node_modules" / "onnxruntime-web" / "dist"]
    for d in candidates:
        if all((d / f).is_file() for f in RUNTIME_FILES):
            version = "unknown"
            try:
                version = str(json.loads((d.parent / "package.json").read_text(encoding="utf-8"))["version"])
            except (OSError, ValueError, KeyError):
                pass
            return Runtime(dir=d, version=version)
    raise FileNotFoundError(_missing_message(candidates[:1] if not env else [Path(env)]))


def _sha256(content: Content) -> str:
    h = hashlib.sha256()
    if isinstance(content, bytes):
        h.update(content)
    else:
        with open(content, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def site_files(bundle: str | os.PathLike[str], runtime: Runtime | None = None) -> dict[str, Content]:
    """URL path -> content for the demo of ``bundle``: page at the root, ``ort/``, ``model/``, ``site.json``.

    The bundle is read with its hashes checked, so a tampered model is never served.
    """
    b = read_bundle(Path(bundle))
    if not b.has("model.onnx"):
        raise BundleError(f"{b.path} has no model.onnx: the browser runs the ONNX model")
    rt = runtime or find_runtime()
    files: dict[str, Content] = {}
    page = page_dir()
    for name in PAGE_FILES:
        files[name] = page / name
    for name in RUNTIME_FILES:
        files[f"ort/{name}"] = rt.dir / name
    for name in _BUNDLE_FILES:
        if name == "manifest.json" or b.has(name):
            files[f"model/{name}"] = b.path / name
    # site.json: what the service worker caches, under a "build" that changes whenever any file does.
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}\0{_sha256(files[path])}\n".encode())
    site = {
        "skedge": __version__,
        "build": digest.hexdigest()[:16],
        "model": {"name": b.manifest.get("name"), "version": b.manifest.get("version"), "url": "model/"},
        "onnxruntime_web": rt.version,
        "files": sorted(files),
    }
    files["site.json"] = (json.dumps(site, indent=2, sort_keys=True) + "\n").encode()
    return files


def write_site(bundle: str | os.PathLike[str], out: str | os.PathLike[str], runtime: Runtime | None = None) -> Path:
    """Write the demo of ``bundle`` to ``out`` as a static site any static host or web view can serve.

    ``out`` must be new, empty, or an earlier demo site (it holds ``site.json``), which is replaced whole.
    The site is written beside ``out`` and renamed into place, so a failure leaves no half site.
    """
    files = site_files(bundle, runtime)
    dest = Path(out)
    if dest.exists():
        if not dest.is_dir():
            raise FileExistsError(f"{dest} exists and is not a folder")
        if any(dest.iterdir()) and not (dest / "site.json").is_file():
            raise FileExistsError(f"{dest} is not empty and is not a skedge demo site: choose a new or empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for rel, content in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
        tmp.chmod(0o755)  # mkdtemp makes it 0700; a web server usually runs as someone else
        if dest.exists():
            old = dest.with_name(f".{dest.name}-old-{os.getpid()}")
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
