"""A registry's bundles and versions: init, publish (content-addressed, immutable), ls."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skedge.runtime import BundleError
from skedge.runtime.registry import (
    REGISTRY_FORMAT,
    SEMVER,
    alias_stacks,
    check_name,
    name_dir,
    read_log,
    registry_info,
    versions,
)
from skedge.runtime.signing import SIGNATURE_FILE, trusted_key, utc_now, verified_files

from ._fs import create_exclusive, fsync_dir, store_tree

__all__ = ["init_registry", "publish", "Published", "listing", "bundle_path", "trust_of", "iso"]


def iso(t: Any = None) -> str:
    """UTC, microseconds: two events a moment apart still order and `history --at` can fall between."""
    return (t or utc_now()).isoformat(timespec="microseconds").replace("+00:00", "Z")


def init_registry(reg: str | os.PathLike[str], *, require_signatures: str | os.PathLike[str] | None = None) -> Path:
    root = Path(reg)
    if (root / "registry.json").exists():
        raise BundleError(f"{root} is already a registry (registry.json exists): nothing changed")
    pem = None
    if require_signatures is not None:
        key = trusted_key(require_signatures)  # refuse a file that is not an Ed25519 public key now
        pem = Path(require_signatures).read_text(encoding="ascii")
        del key
    root.mkdir(parents=True, exist_ok=True)
    for d in ("bundles", "names", "data"):
        (root / d).mkdir(exist_ok=True)
    info = {"format": REGISTRY_FORMAT, "kind": "skedge-registry", "require_signatures": pem, "created": iso()}
    if not create_exclusive(root, root / "registry.json", _json(info)):
        raise BundleError(f"{root} was made a registry by someone else just now: nothing changed")
    fsync_dir(root)
    return root


def trust_of(info: dict[str, Any]) -> bytes | None:
    """The registry's trusted public key (PEM bytes) when it requires signatures."""
    pem = info.get("require_signatures")
    return pem.encode("ascii") if isinstance(pem, str) else None


def _json(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


def bundle_path(reg: Path, digest: str) -> Path:
    return reg / "bundles" / digest


@dataclass(frozen=True)
class Published:
    name: str
    version: str
    digest: str
    path: Path
    created: bool  # False: the same content was already there (a no-op)
    signed: bool


def publish(bundle: str | os.PathLike[str], reg: str | os.PathLike[str]) -> Published:
    """Store a bundle by its identity and claim its version; the same content twice is a no-op, the same
    version with other content is refused."""
    root, src = Path(reg), Path(bundle)
    info = registry_info(root)
    trust = trust_of(info)
    if trust is not None and not (src / SIGNATURE_FILE).is_file():
        raise BundleError(f"{src} is not signed, and {root} accepts only signed bundles: "
                          "skedge sign BUNDLE --key KEY first")
    # a registry that requires signatures stores only verified bundles
    manifest, digest, files, signed = verified_files(src, trust)
    name = check_name(str(manifest.get("name")))
    version = str(manifest.get("version"))
    if not SEMVER.fullmatch(version):  # not .match: '$' passes a final newline
        raise BundleError(f"{src}: version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    claim = name_dir(root, name) / "versions" / f"{version}.json"

    def same_or_refuse() -> Published | None:
        have = versions(root, name).get(version)
        if have is None:
            return None
        if have.get("digest") == digest:
            return Published(name, version, digest, bundle_path(root, digest), False, bool(have.get("signed")))
        raise BundleError(f"{root}: {name}@{version} is already published with other content (identity "
                          f"{str(have.get('digest'))[:12]}…, this bundle {digest[:12]}…): a version is immutable; "
                          "publish a new version")

    done = same_or_refuse()
    if done is not None:
        return done
    store_tree(root, bundle_path(root, digest), files)
    record = {"name": name, "version": version, "digest": digest, "published": iso(), "signed": signed,
              "task": manifest.get("task"), "user": _user()}
    if not create_exclusive(root, claim, _json(record)):
        done = same_or_refuse()  # another publisher claimed it between our check and our claim
        assert done is not None
        return done
    return Published(name, version, digest, bundle_path(root, digest), True, signed)


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "unknown"


def listing(reg: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every model: its versions (with identity, signed or not) and who holds each alias."""
    root = Path(reg)
    registry_info(root)
    out = []
    names = root / "names"
    for n in sorted(os.listdir(names)) if names.is_dir() else []:
        if n.startswith("."):
            continue
        stacks = alias_stacks(read_log(root, n))
        out.append({"name": n, "versions": versions(root, n),
                    "aliases": {a: s[-1].version for a, s in sorted(stacks.items()) if s}})
    return out
