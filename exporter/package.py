"""``skedge package``: a verified bundle as a Python wheel and an npm tarball, so an app pins the model like any
other dependency (issue 16).

    from skedge.exporter.package import package
    built = package("models/penguins/1.0.0", "dist")   # dist/penguins_model-1.0.0-py3-none-any.whl,
                                                         # dist/penguins-model-1.0.0.tgz

What goes into both packages is the bytes that were checked: every file against the manifest (and, with
``trust``, the signature first), then the model is loaded from those very bytes and its golden rows are run
through the runtime before anything is written. Both files are byte-reproducible: same bundle, same bytes.

A schema change (a feature added, removed or retyped, the task or the class list changed) breaks every app
that calls the model, so it needs a new major version: with ``registry`` the previous version of the model
there is read and a minor or patch bump over a changed schema is refused, naming what changed.
"""

from __future__ import annotations

import keyword
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skedge.runtime import BundleError, ConfigError, GateError, ParityError
from skedge.runtime.signing import verified_files

__all__ = ["package", "Packaged", "dist_name", "schema_changes", "previous_version", "check_schema_rule",
           "DIST_NAME"]

# Lowercase letters and digits in '-'-separated words, starting with a letter: at once a valid (and already
# normalised, PEP 503) Python distribution name, a valid unscoped npm name, and, with '-' as '_', an identifier.
DIST_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_MAX_NAME = 100
# Names a model package must not take: installing a wheel called numpy or onnxruntime replaces the real one (and
# breaks the runtime the model needs); an npm package called onnxruntime-node shadows its own peer dependency.
# The runtime's install closure (base and [sign]) and the npm peers, a fixed list so that a build never depends
# on what happens to be installed.
RESERVED_NAMES = frozenset({
    "skedge", "numpy", "onnxruntime", "onnxruntime-gpu", "onnx", "flatbuffers", "packaging", "protobuf", "sympy",
    "mpmath", "coloredlogs", "humanfriendly", "cryptography", "cffi", "pycparser", "pip", "setuptools", "wheel",
    "onnxruntime-node", "onnxruntime-web", "onnxruntime-common"})
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class Packaged:
    name: str  # the distribution / npm name
    module: str  # the Python import name
    version: str
    wheel: Path
    npm: Path
    digest: str  # sha256 of the bundle's manifest.json: the identity both packages carry
    signed: bool
    previous: str | None  # the registry version the schema was compared with


def dist_name(model_name: str, name: str | None = None) -> str:
    """The package name: ``name`` checked, or ``<model>-model`` from the bundle's model name."""
    if name is not None:
        if len(name) > _MAX_NAME or not DIST_NAME.fullmatch(name):  # '$' alone passes a final newline
            raise ConfigError(f"--name {name!r} is not a package name: lowercase letters and digits in words joined "
                              "by single '-', starting with a letter (e.g. penguins-model), so it is valid on PyPI and "
                              "npm alike and imports as penguins_model")
        candidate = name
    else:
        candidate = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") + "-model"
        if not DIST_NAME.match(candidate) or len(candidate) > _MAX_NAME:
            raise ConfigError(f"model name {model_name!r} gives no valid package name ({candidate!r}): "
                              "give one with --name (e.g. --name penguins-model)")
    if candidate in RESERVED_NAMES:
        raise ConfigError(f"--name {candidate!r} is the name of a package the model's runtime installs or needs: "
                          "installing the model would replace it; choose another name (e.g. "
                          f"{candidate}-model)")
    module = candidate.replace("-", "_")
    if keyword.iskeyword(module) or module == "skedge":
        raise ConfigError(f"--name {candidate!r} cannot be imported as a module of its own ({module!r} is "
                          "a Python keyword or skedge itself): choose another name")
    return candidate


def _semver(version: str, where: str) -> tuple[int, int, int, tuple[Any, ...]]:
    m = _SEMVER.fullmatch(version)
    if not m:
        raise BundleError(f"{where}: version {version!r} is not semver (MAJOR.MINOR.PATCH): a package needs one")
    pre = m.group(4)
    # semver precedence: a pre-release sorts before its release; identifiers numeric-before-text
    key: tuple[Any, ...] = (1,) if pre is None else (0, *((0, int(p), "") if p.isdigit() else (1, 0, p)
                                                          for p in pre.split(".")))
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), key


def schema_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two manifests' schemas in a way an app's call sees: fields added, removed or
    retyped (kind or nullability), the task, the class list. Categories, statistics and order are not: an app
    sends fields by name and an unseen category answers as the schema says."""
    def features(m: dict[str, Any]) -> dict[str, tuple[str, bool]]:
        return {str(f.get("name")): (str(f.get("kind")), f.get("nullable", True) is not False)
                for f in (m.get("schema") or {}).get("features") or []}

    a, b = features(old), features(new)
    out = [f"field '{n}' added" for n in b if n not in a]
    out += [f"field '{n}' removed" for n in a if n not in b]
    for n in a:
        if n in b and a[n] != b[n]:
            (k0, n0), (k1, n1) = a[n], b[n]
            out.append(f"field '{n}' retyped ({k0}{'?' if n0 else ''} -> {k1}{'?' if n1 else ''})")
    s0, s1 = old.get("schema") or {}, new.get("schema") or {}
    if s0.get("task") != s1.get("task"):
        out.append(f"task {s0.get('task')} -> {s1.get('task')}")
    c0, c1 = s0.get("classes", old.get("classes")), s1.get("classes", new.get("classes"))
    if (c0 or None) != (c1 or None):
        out.append(f"classes {c0} -> {c1}")
    return out


def previous_version(registry: str | os.PathLike[str], name: str, version: str) -> tuple[str, dict[str, Any]] | None:
    """(version, manifest) of the highest version of ``name`` in ``registry`` below ``version``, or None."""
    from skedge.runtime._bundle import read_bundle
    from skedge.runtime.registry import registry_info, versions

    reg = Path(registry)
    registry_info(reg)
    this = _semver(version, str(reg))
    older = [(v, rec) for v, rec in versions(reg, name).items() if _SEMVER.match(v) and _semver(v, str(reg)) < this]
    if not older:
        return None
    v, rec = max(older, key=lambda item: _semver(item[0], str(reg)))
    # the registry stores bundles by identity: the claim names it
    return v, dict(read_bundle(reg / "bundles" / str(rec.get("digest")), verify_hashes=False).manifest)


def check_schema_rule(manifest: dict[str, Any], registry: str | os.PathLike[str]) -> str | None:
    """Refuse (``GateError``, one line) a version that changes the schema of the registry's previous version of
    the model without a new major version; the previous version compared, or None when there is none."""
    name, version = str(manifest.get("name")), str(manifest.get("version"))
    prev = previous_version(registry, name, version)
    if prev is None:
        return None
    v, old = prev
    changed = schema_changes(old, manifest)
    if changed and _semver(v, str(registry))[0] == _semver(version, name)[0]:
        major = _semver(v, str(registry))[0] + 1
        raise GateError(f"{name} {version} changes the schema of {v} in {registry} ({'; '.join(changed)}): a schema "
                        f"change needs a new major version ({major}.0.0), or keep the schema")
    return v


def _prove(files: dict[str, bytes]) -> None:
    """Load the model from the very bytes that will be shipped and run its golden rows through the runtime."""
    from skedge.runtime import load

    with tempfile.TemporaryDirectory(prefix="skedge-package-") as tmp:
        root = Path(tmp)
        for n, data in files.items():
            (root / n).parent.mkdir(parents=True, exist_ok=True)
            (root / n).write_bytes(data)
        model = load(root)
        if "golden.json" in files:
            row = model.verify()
            if not row.passed:
                raise ParityError(f"the bundle's model does not answer its golden rows (labels "
                                  f"{row.label_agreement:.2%}, max abs diff {row.max_abs_diff:.3g}): not packaged")


def package(bundle: str | os.PathLike[str], out: str | os.PathLike[str], *, name: str | None = None,
            trust: Any = None, registry: str | os.PathLike[str] | None = None) -> Packaged:
    """Build ``<module>-<version>-py3-none-any.whl`` and ``<name>-<version>.tgz`` into ``out`` from a bundle.

    ``name``: the package name (default ``<model>-model``); ``trust``: a public key the bundle's signature must
    verify with (and the signature is shipped); ``registry``: compare the schema with the previous version there.
    """
    from ._npm import build_npm
    from ._wheel import _pep440, build_wheel

    src = Path(bundle)
    manifest, digest, files, signed = verified_files(src, trust)
    model_name, version = str(manifest.get("name")), str(manifest.get("version"))
    _semver(version, str(src))
    _pep440(version)  # refused before anything is written
    dist = dist_name(model_name, name)
    previous = check_schema_rule(manifest, registry) if registry is not None else None
    _prove(files)
    dest = Path(out)
    if dest.exists() and not dest.is_dir():  # mkdir's own words were "[Errno 17] File exists: 'dist'"
        raise ConfigError(f"--out {dest} is a file: give a directory for the wheel and the tarball")
    dest.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(files, manifest, digest, dist, dest)
    npm = build_npm(files, manifest, digest, dist, dest)
    return Packaged(dist, dist.replace("-", "_"), version, wheel, npm, digest, signed, previous)
