"""``skedge fsck``: is the registry consistent, and what did a killed writer leave behind?

Checked: registry.json; every name's event log (sequence, hash chain, signatures when the registry
requires them); every version claim's bundle (present, every file's sha256); every alias event names a
published version; the aliases.json snapshot equals the log's replay. Left by a killed writer, and removed
by ``--repair``: temporary entries in ``.tmp`` whose writer is gone, stored bundles and benchmark files no
claim or event refers to, a stale snapshot. A broken chain or a damaged bundle cannot be repaired here: it
is reported and the exit is non-zero.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from skedge.runtime import SkedgeError
from skedge.runtime._bundle import read_bundle
from skedge.runtime.registry import name_dir, read_log, registry_info, versions
from skedge.runtime.signing import read_signed

from ._alias import snapshot, write_snapshot
from ._fs import TMP, pid_alive
from ._store import bundle_path, trust_of

__all__ = ["fsck", "FsckReport"]


@dataclass
class FsckReport:
    problems: list[str] = field(default_factory=list)  # cannot be repaired here
    repairable: list[str] = field(default_factory=list)  # what a killed writer left (found, maybe removed)
    repaired: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.problems and len(self.repaired) == len(self.repairable)


def _writer_pid(name: str) -> int | None:
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def fsck(reg: str | os.PathLike[str], *, repair: bool = False) -> FsckReport:
    root = Path(reg)
    rep = FsckReport()
    info = registry_info(root)
    trust = trust_of(info)

    def leftover(what: str, path: Path) -> None:
        rep.repairable.append(what)
        if repair:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            rep.repaired.append(what)

    tmp = root / TMP
    live_writer = False
    for n in sorted(os.listdir(tmp)) if tmp.is_dir() else []:
        pid = _writer_pid(n)
        if pid is not None and pid != os.getpid() and pid_alive(pid):
            live_writer = True
            continue  # a writer at work: its temporary file is not debris
        leftover(f"temporary {TMP}/{n} left by a writer that is gone", tmp / n)
    used_bundles: set[str] = set()
    used_data: set[str] = set()
    names = root / "names"
    for name in sorted(os.listdir(names)) if names.is_dir() else []:
        if name.startswith("."):
            continue
        claims = versions(root, name)
        for version, claim in claims.items():
            digest = str(claim.get("digest"))
            used_bundles.add(digest)
            try:
                b = read_signed(bundle_path(root, digest), trust) if trust is not None else \
                    read_bundle(bundle_path(root, digest), verify_hashes=True)
                if b.digest != digest or str(b.manifest.get("version")) != version:
                    rep.problems.append(f"{name}@{version}: the stored bundle is not the one claimed")
            except SkedgeError as exc:
                rep.problems.append(f"{name}@{version}: {exc}")
        try:
            events = read_log(root, name, trust=trust)
        except SkedgeError as exc:
            rep.problems.append(f"{name}: {exc}")
            continue
        for ev in events:
            p = ev.payload
            if claims.get(str(p.get("version")), {}).get("digest") != p.get("digest"):
                rep.problems.append(f"{ev.path}: names {name}@{p.get('version')}, which is not published as such")
            if p.get("data"):
                used_data.add(str(p["data"]))
        snap = name_dir(root, name) / "aliases.json"
        want = snapshot(root, name)
        if events and (not snap.is_file() or snap.read_bytes() != want):
            rep.repairable.append(f"{name}: aliases.json does not match the log (a move was cut short)")
            if repair:
                write_snapshot(root, name)
                rep.repaired.append(rep.repairable[-1])
    if not live_writer:  # while a writer runs, an unclaimed bundle may be its work in progress
        for d in sorted(os.listdir(root / "bundles")) if (root / "bundles").is_dir() else []:
            if d not in used_bundles:
                leftover(f"bundles/{d[:12]}… is stored but no version claims it (a publish was cut short)",
                         root / "bundles" / d)
        for f in sorted(os.listdir(root / "data")) if (root / "data").is_dir() else []:
            if f not in used_data:
                leftover(f"data/{f[:12]}… is stored but no promotion used it (a promote was cut short)",
                         root / "data" / f)
    return rep
