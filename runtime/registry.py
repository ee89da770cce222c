"""Reading a skedge registry: its layout, its event log, resolving ``NAME@ALIAS`` (no lock, no server).

The writer is ``skedge.registry`` (publish, promote, rollback, fsck); this module is what an app needs to
follow an alias, so it lives in the runtime (stdlib only; ``cryptography`` when ``trust=`` is given).

Layout (every file is written whole under a temporary name, fsynced, then linked or renamed in)::

    REG/registry.json                          {"format": 1, "kind": "skedge-registry", "require_signatures": PEM|null}
    REG/bundles/<manifest sha256>/             immutable bundle copies, stored by their identity
    REG/data/<sha256>.<ext>                    benchmark sets the gate scored on
    REG/names/<name>/versions/<version>.json   the claim of a version: {"digest", "published", ...}
    REG/names/<name>/log/<sequence>.json       the append-only event log: one DSSE envelope per alias move
    REG/names/<name>/aliases.json              a snapshot rebuilt from the log after each move (fsck checks it)
    REG/.tmp/                                  writers' temporary files (fsck --repair removes stale ones)

An event's payload holds its ``sequence`` (1, 2, … per name: the file name) and ``prev``, the sha256 of the
previous event file's bytes, so the log is a hash chain. An alias move claims the next sequence with an
exclusive create (``os.link``): two writers racing for it cannot both win (compare-and-swap). With a key,
events are signed; a reader with ``trust=`` verifies them and refuses an alias record whose sequence is
lower than one it accepted before (an old state of the registry replayed). A rollback is a new, higher
record that names an older version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._bundle import _parse_json
from ._errors import BundleError

__all__ = ["REGISTRY_FORMAT", "EVENT_TYPE", "SEMVER", "Event", "Holder", "Resolved", "is_registry", "registry_info",
           "check_name", "name_dir", "log_dir", "read_log", "alias_stacks", "versions", "resolve", "parse_ref",
           "canonical", "locate", "holder_event"]

REGISTRY_FORMAT = 1
EVENT_TYPE = "application/vnd.skedge.registry-event+json"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_LOG_FILE = re.compile(r"^(\d{8})\.json$")


def is_registry(path: Path) -> bool:
    return (path / "registry.json").is_file()


def registry_info(reg: Path) -> dict[str, Any]:
    p = reg / "registry.json"
    if not p.is_file():
        raise BundleError(f"{reg} is not a skedge registry (no registry.json): create it with skedge registry init")
    info = _parse_json(p.read_bytes(), p)
    if info.get("kind") != "skedge-registry" or info.get("format") != REGISTRY_FORMAT:
        raise BundleError(f"{p}: not a skedge registry of format {REGISTRY_FORMAT}")
    return info


def check_name(name: str, what: str = "model name") -> str:
    if not _NAME.fullmatch(name or ""):  # not .match: '$' passes a final newline
        raise BundleError(f"{what} {name!r} is not a plain name (letters, digits, '.', '_', '-')")
    return name


def name_dir(reg: Path, name: str) -> Path:
    return reg / "names" / check_name(name)


def log_dir(reg: Path, name: str) -> Path:
    return name_dir(reg, name) / "log"


def parse_ref(ref: str) -> tuple[str, str]:
    """``NAME@X`` -> (NAME, X); X is a version when it reads as semver, an alias otherwise."""
    name, sep, x = ref.partition("@")
    if not sep or not name or not x:
        raise BundleError(f"{ref!r} is not NAME@VERSION or NAME@ALIAS (e.g. penguins@1.0.0, penguins@prod)")
    return check_name(name), x


@dataclass(frozen=True)
class Event:
    sequence: int
    payload: dict[str, Any]
    digest: str  # sha256 of the event file's bytes: what the next event's "prev" names
    keyids: tuple[str, ...]
    path: Path
    envelope: Any


def _event(path: Path, raw: bytes) -> Event:
    from .signing import Envelope

    env = Envelope.from_json(_parse_json(raw, path), str(path))
    if env.payload_type != EVENT_TYPE:
        raise BundleError(f"{path} is not a registry event ({env.payload_type!r})")
    payload = _parse_json(env.payload, path)
    return Event(int(payload.get("sequence", -1)), payload, hashlib.sha256(raw).hexdigest(),
                 tuple(k for k, _ in env.signatures), path, env)


def read_log(reg: Path, name: str, *, trust: Any = None) -> list[Event]:
    """Every event of ``name`` in order, the hash chain checked (and, with ``trust``, every signature)."""
    d = log_dir(reg, name)
    if not d.is_dir():
        return []
    files = sorted(n for n in os.listdir(d) if _LOG_FILE.match(n))
    key = None
    if trust is not None:
        from .signing import trusted_key

        key = trusted_key(trust)
    events: list[Event] = []
    prev: str | None = None
    for i, n in enumerate(files, start=1):
        p = d / n
        ev = _event(p, p.read_bytes())
        if int(_LOG_FILE.match(n).group(1)) != i or ev.sequence != i:  # type: ignore[union-attr]
            raise BundleError(f"{p}: the event log has a gap or a misplaced event (expected sequence {i}): "
                              "the log was changed; run skedge fsck")
        if ev.payload.get("prev") != prev:
            raise BundleError(f"{p}: the hash chain is broken (prev does not name event {i - 1}): the log was "
                              "changed after it was written; run skedge fsck")
        if key is not None:
            from .signing import dsse_open

            dsse_open(ev.envelope, key, str(p), payload_type=EVENT_TYPE)
        events.append(ev)
        prev = ev.digest
    return events


@dataclass(frozen=True)
class Holder:
    version: str
    digest: str
    sequence: int


def alias_stacks(events: list[Event]) -> dict[str, list[Holder]]:
    """Per alias, the holders a rollback walks back through: promote pushes, rollback pops."""
    stacks: dict[str, list[Holder]] = {}
    for ev in events:
        p = ev.payload
        stack = stacks.setdefault(str(p["alias"]), [])
        if p.get("type") == "rollback" and stack:
            stack.pop()
        elif p.get("type") == "promote":
            stack.append(Holder(str(p["version"]), str(p["digest"]), ev.sequence))
        if stack and p.get("type") == "rollback":  # the holder after a rollback was named by this record
            stack[-1] = Holder(str(p["version"]), str(p["digest"]), ev.sequence)
    return stacks


def versions(reg: Path, name: str) -> dict[str, dict[str, Any]]:
    d = name_dir(reg, name) / "versions"
    out: dict[str, dict[str, Any]] = {}
    if d.is_dir():
        for n in sorted(os.listdir(d)):
            if n.endswith(".json") and not n.startswith("."):
                out[n[:-5]] = _parse_json((d / n).read_bytes(), d / n)
    return out


@dataclass(frozen=True)
class Resolved:
    path: Path
    name: str
    version: str
    digest: str
    alias: str | None
    sequence: int | None
    accept: Callable[[], None] | None = None  # record the alias sequence as accepted (after a verified load)


def resolve(reg: str | os.PathLike[str], name: str | None, alias: str | None, *, trust: Any = None,
            state_dir: str | os.PathLike[str] | None = None) -> Resolved:
    """The bundle ``name@alias`` (or ``name@version``) names in ``reg``, lock-free.

    With ``trust`` the alias's records must be signed by that key and not older than what this reader
    accepted before (kept in ``state_dir``); call ``accept()`` once the bundle itself has been verified.
    """
    root = Path(reg)
    registry_info(root)
    if not name or not alias:
        raise BundleError(f"{root} is a registry: name the model and its alias (name=..., alias=...)")
    check_name(name)
    if SEMVER.match(alias):
        v = versions(root, name).get(alias)
        if v is None:
            raise BundleError(f"{root}: {name}@{alias} was never published (skedge ls --registry {root})")
        return Resolved(root / "bundles" / str(v["digest"]), name, alias, str(v["digest"]), None, None)
    events = read_log(root, name, trust=trust)
    stack = alias_stacks(events).get(alias)
    if not stack:
        raise BundleError(f"{root}: no version of {name!r} holds the alias {alias!r} "
                          f"(promote one: skedge promote {name}@VERSION --alias {alias} --registry {root})")
    top = stack[-1]
    accept = None
    if trust is not None:
        from .signing import StateFile

        state = StateFile(state_dir)
        key = f"alias:{root.resolve()}:{name}@{alias}"
        # the reader's own high-water mark is for the whole log: a replayed registry has fewer events
        head = events[-1].sequence
        state.check(key, head, f"{root}: the alias record {name}@{alias}")

        def accept() -> None:
            state.accept(key, head)
    return Resolved(root / "bundles" / top.digest, name, top.version, top.digest, alias, top.sequence, accept)


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def locate(bundle: str, registry: str | os.PathLike[str] | None) -> str:
    """A command's bundle argument: a path as it is, or with ``--registry`` ``NAME@ALIAS`` / ``NAME@VERSION``."""
    if registry is None:
        return bundle
    name, x = parse_ref(bundle)
    return str(resolve(registry, name, x).path)


def holder_event(registry: str | os.PathLike[str], ref: str) -> tuple[Resolved, Event | None]:
    """What ``NAME@ALIAS`` resolves to and the event that gave the alias its holder (None for a version)."""
    name, x = parse_ref(ref)
    r = resolve(registry, name, x)
    if r.sequence is None:
        return r, None
    return r, read_log(Path(registry), name)[r.sequence - 1]
