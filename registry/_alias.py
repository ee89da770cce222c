"""Alias moves (promote, rollback) as compare-and-swap on the hash-chained event log; history."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from skedge.runtime import BundleError, GateError, Model, load
from skedge.runtime.registry import (
    EVENT_TYPE,
    Event,
    Holder,
    alias_stacks,
    canonical,
    log_dir,
    name_dir,
    read_log,
    registry_info,
    versions,
)
from skedge.runtime.signing import Envelope, dsse_sign, load_private_key, parse_time, trusted_key

from ._fs import create_exclusive, fsync_dir, replace_file, tmp_path
from ._store import _json, bundle_path, iso, trust_of
from .gate import GateReport, check_benchmark, compare, file_sha256

__all__ = ["promote", "rollback", "history", "Moved", "holders_at", "snapshot", "write_snapshot"]


@dataclass(frozen=True)
class Moved:
    name: str
    alias: str
    version: str
    previous: str | None
    sequence: int
    gate: GateReport | None
    changed: bool = True


def _load(reg: Path, digest: str, trust: bytes | None) -> Model:
    """A stored bundle through the runtime, its identity checked (and its signature, in a signed registry)."""
    path = bundle_path(reg, digest)
    if trust is not None:
        from skedge.runtime.signing import read_signed

        read_signed(path, trust)  # the writer is no reader: no replay state, the log's chain guards it
    return load(path, manifest_sha256=digest)


def _key_for(info: Mapping[str, Any], key: str | os.PathLike[str] | None) -> Any:
    trust = trust_of(dict(info))
    if key is None:
        if trust is not None:
            raise BundleError("this registry requires signatures: alias moves must be signed, give --key KEY")
        return None
    private = load_private_key(key)
    if trust is not None:
        from skedge.runtime.signing import _keyid

        if _keyid(private.public_key()) != trusted_key(trust).keyid:
            raise BundleError(f"{key} is not the key this registry trusts: its alias records would not verify")
    return private


def _append(reg: Path, name: str, events: list[Event], payload: dict[str, Any], private: Any) -> int:
    seq = len(events) + 1
    payload = {**payload, "sequence": seq, "prev": events[-1].digest if events else None}
    body = canonical(payload)
    env = dsse_sign(EVENT_TYPE, body, private) if private is not None else Envelope(EVENT_TYPE, body, ())
    if not create_exclusive(reg, log_dir(reg, name) / f"{seq:08d}.json", _json(env.to_json())):
        raise BundleError(f"{reg}: another alias move of {name!r} (event {seq}) was written while this one ran: "
                          "nothing changed; look at skedge history and run the command again")
    write_snapshot(reg, name)
    return seq


def snapshot(reg: Path, name: str) -> bytes:
    stacks = alias_stacks(read_log(reg, name))
    return _json({a: {"version": s[-1].version, "digest": s[-1].digest, "sequence": s[-1].sequence}
                  for a, s in sorted(stacks.items()) if s})


def write_snapshot(reg: Path, name: str) -> None:
    replace_file(reg, name_dir(reg, name) / "aliases.json", snapshot(reg, name))


def _benchmark(events: list[Event]) -> str | None:
    for ev in reversed(events):
        if ev.payload.get("data"):
            return str(ev.payload["data"])
    return None


def _store_data(reg: Path, data: Path) -> tuple[str, Path | None]:
    """(the benchmark's name in REG/data, the path when this call stored it: removed again if the move fails)."""
    digest = file_sha256(data)
    dest = reg / "data" / f"{digest}{data.suffix.lower()}"
    if dest.exists():
        return dest.name, None
    tmp = tmp_path(reg, data.suffix.lower())
    shutil.copyfile(data, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    if file_sha256(tmp) != digest:
        os.unlink(tmp)
        raise BundleError(f"{data} changed while it was being stored: try again")
    os.replace(tmp, dest)
    fsync_dir(dest.parent)
    return dest.name, dest


def _manifest_rules(model: Model) -> dict[str, float]:
    """Rules the config set (``[evaluation.compare]``, carried in the manifest as ``compare``): metric -> max drop."""
    rules = model.bundle.manifest.get("compare") if model.bundle else None
    if not isinstance(rules, dict):
        return {}
    return {str(k): float(v) for k, v in rules.items() if isinstance(v, int | float)}


def promote(reg: str | os.PathLike[str], name: str, version: str, alias: str, *,
            data: str | os.PathLike[str] | None = None, force: bool = False, reason: str | None = None,
            key: str | os.PathLike[str] | None = None, max_drop: Mapping[str, float] | None = None,
            target: str | None = None) -> Moved:
    """Move ``alias`` to ``name@version`` if it is not worse than the alias's current holder."""
    root = Path(reg)
    info = registry_info(root)
    private = _key_for(info, key)
    if force and not (reason and reason.strip()):
        raise BundleError("--force needs --reason TEXT: the log keeps why the gate was overridden")
    claim = versions(root, name).get(version)
    if claim is None:
        raise BundleError(f"{root}: {name}@{version} is not published (skedge publish BUNDLE --registry {root})")
    digest = str(claim["digest"])
    trust = trust_of(info)
    events = read_log(root, name, trust=trust)
    stack = alias_stacks(events).get(alias, [])
    current = stack[-1] if stack else None
    if current is not None and current.digest == digest:
        return Moved(name, alias, version, current.version, current.sequence, None, changed=False)
    candidate = _load(root, digest, trust)
    data_ref = None
    data_file: Path | None = None
    if data is not None:
        data_file = Path(data)
    elif (bench := _benchmark(events)) is not None:
        data_file, data_ref = root / "data" / bench, bench
    report = None
    if current is not None:
        if data_file is None:
            if not force:
                raise GateError(f"{name}@{alias} is held by {current.version}: the gate needs labelled data to compare "
                                f"with it: give --data FILE (kept as the fixed benchmark set), or --force --reason")
        else:
            rules = {**_manifest_rules(candidate), **dict(max_drop or {})}
            report = compare(candidate, _load(root, current.digest, trust), data_file, target=target,
                             max_drop=rules or None)
            if not report.passed and not force:
                raise GateError(f"promotion of {name}@{version} to {alias!r} refused by the gate: {report.refusal}")
    elif data_file is not None:  # the first holder: nothing to compare with, but the benchmark must be usable
        if not data_file.is_file():
            raise BundleError(f"{data_file} does not exist")
        check_benchmark(candidate, data_file, target)
    stored = None
    if data_file is not None and data_ref is None:
        data_ref, stored = _store_data(root, data_file)
    payload = {"type": "promote", "name": name, "alias": alias, "version": version, "digest": digest,
               "previous": current.version if current else None, "time": iso(), "user": _user(),
               "forced": bool(force), "reason": reason, "data": data_ref,
               "gate": report.to_json() if report else None}
    try:
        seq = _append(root, name, events, payload, private)
    except BundleError:
        # a lost race changes nothing, not even the benchmark it brought, unless the winner refers to it
        if stored is not None and not any(ev.payload.get("data") == data_ref for ev in read_log(root, name)):
            stored.unlink(missing_ok=True)
        raise
    if data_file is not None and data_ref is not None and not (root / "data" / data_ref).exists():
        _store_data(root, data_file)  # a loser of a race removed the copy this move refers to: put it back
    return Moved(name, alias, version, current.version if current else None, seq, report)


def rollback(reg: str | os.PathLike[str], name: str, alias: str, *, key: str | os.PathLike[str] | None = None,
             reason: str | None = None) -> Moved:
    """Move ``alias`` back to the version that held it before its current holder (a new, higher record)."""
    root = Path(reg)
    info = registry_info(root)
    private = _key_for(info, key)
    events = read_log(root, name, trust=trust_of(info))
    stack = alias_stacks(events).get(alias, [])
    if len(stack) < 2:
        held = f"only {stack[-1].version} has held it" if stack else "no version holds it"
        raise BundleError(f"{root}: nothing to roll {name}@{alias} back to ({held})")
    back: Holder = stack[-2]
    payload = {"type": "rollback", "name": name, "alias": alias, "version": back.version, "digest": back.digest,
               "previous": stack[-1].version, "time": iso(), "user": _user(), "forced": False,
               "reason": reason, "data": None, "gate": None}
    seq = _append(root, name, events, payload, private)
    return Moved(name, alias, back.version, stack[-1].version, seq, None)


def _user() -> str:
    from ._store import _user as user

    return user()


def holders_at(events: list[Event], at: datetime) -> dict[str, str]:
    """Who held each alias at time ``at`` (events in log order up to that time)."""
    upto = [ev for ev in events if parse_time(str(ev.payload["time"])) <= at]
    return {a: s[-1].version for a, s in sorted(alias_stacks(upto).items()) if s}


def history(reg: str | os.PathLike[str], name: str, *, alias: str | None = None,
            at: str | datetime | None = None) -> list[dict[str, Any]] | dict[str, str]:
    """Every alias move of ``name`` (filtered to ``alias``); with ``at``: who held each alias then."""
    root = Path(reg)
    info = registry_info(root)
    events = read_log(root, name, trust=trust_of(info))
    if at is not None:
        when = parse_time(at) if isinstance(at, str) else at
        held = holders_at(events, when)
        return {a: v for a, v in held.items() if alias is None or a == alias}
    return [ev.payload for ev in events if alias is None or ev.payload.get("alias") == alias]
