"""One followed alias: stage, verify, prove on this device, swap, persist, roll back (issue 15).

Each update: poll the source; refuse a replayed (lower) sequence and an expired channel; pick the bundle
this device runs (``pin``, the rollout bucket of ``device_id``); download it into a staging folder with
every file's sha256 and size checked as it arrives; verify the signature (``read_signed``: signature,
listing, hashes, expiry); refuse a lower release unless the signed move is a rollback; load it into a new
session; run its golden rows here; only then swap. ``state.json`` (written whole: temp, fsync, rename)
names ``current`` and ``previous``, both kept as verified bundles under ``bundles/<digest>``, so a
restart without network starts on the last good model, and a rollback needs no download.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._channel import Offer, Source, Unreachable, is_digest
from ._errors import BundleError
from ._model import Model, load

__all__ = ["UpdateEvent", "Held", "Follower", "rollout_bucket", "device_id_for"]

_FETCHERS = 4  # files downloaded at once into staging


@dataclass(frozen=True)
class UpdateEvent:
    """What ``on_event`` hears: ``kind`` is "accepted", "rejected" or "rolled_back"."""

    kind: str
    version: str | None
    reason: str
    alias: str
    previous: str | None = None  # the version served before (accepted, rolled_back)
    sequence: int | None = None
    seconds: float | None = None  # accepted: from the poll that found it to the swap (download, checks, golden rows)


@dataclass(frozen=True)
class Held:
    """A bundle this device verified and may serve."""

    version: str
    digest: str
    release: int
    expires: str | None
    sequence: int


def rollout_bucket(name: str, alias: str, version: str, device_id: str) -> float:
    """A device's place in [0, 1) for a release: the same device, the same answer; a share s takes those below s,
    so raising the share only adds devices."""
    h = hashlib.sha256(f"{name}\0{alias}\0{version}\0{device_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def device_id_for(root: Path) -> str:
    """A random id made once per state directory (no hardware identifier is read)."""
    p = root / "device_id"
    try:
        return p.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        root.mkdir(parents=True, exist_ok=True)
        _write_atomic(p, secrets.token_hex(16).encode("ascii"))
        return p.read_text(encoding="ascii").strip()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _expired(expires: str | None) -> bool:
    if not expires:
        return False
    from .signing import parse_time, utc_now

    return utc_now() >= parse_time(expires)


class _LowerRelease(BundleError):
    pass


class Follower:
    """The state of one ``name@alias`` on this device. ``model`` is swapped by assignment: a caller that read it
    keeps that session to the end of its call."""

    def __init__(self, source: Source, name: str, alias: str, *, trust: Any, state_root: Path,
                 emit: Callable[[UpdateEvent], None], pin: str | None = None, device_id: str | None = None) -> None:
        self.source, self.name, self.alias, self.trust, self.pin = source, name, alias, trust, pin
        self.dir = state_root / f"{name}@{alias}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.device_id = device_id or device_id_for(state_root)
        self._emit = emit
        self._lock = threading.RLock()
        self.model: Model | None = None
        self.held: Held | None = None
        self.previous_model: Model | None = None
        self.previous: Held | None = None
        self.sequence = 0
        self.bad: dict[str, str] = {}  # digest -> why this device will not take it (again)
        self.last_error: str | None = None
        self._last_reject: str | None = None
        self._polled = 0.0
        self._read_state()

    # -- persistence ------------------------------------------------------
    def _read_state(self) -> None:
        p = self.dir / "state.json"
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            raise BundleError(f"{p} is unreadable: restore it, or remove {self.dir} to start afresh") from None
        self.held = Held(**data["current"]) if data.get("current") else None
        self.previous = Held(**data["previous"]) if data.get("previous") else None
        self.sequence = int(data.get("sequence", 0))
        self.bad = {str(k): str(v) for k, v in dict(data.get("bad") or {}).items()}

    def _write_state(self) -> None:
        data = {"current": asdict(self.held) if self.held else None,
                "previous": asdict(self.previous) if self.previous else None,
                "sequence": self.sequence, "bad": dict(sorted(self.bad.items())), "name": self.name,
                "alias": self.alias}
        _write_atomic(self.dir / "state.json", json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))
        keep = {h.digest for h in (self.held, self.previous) if h is not None}
        bundles = self.dir / "bundles"
        for d in os.listdir(bundles) if bundles.is_dir() else []:
            if d not in keep:
                shutil.rmtree(bundles / d, ignore_errors=True)

    # -- verification -----------------------------------------------------
    def _prove(self, path: Path, version: str, digest: str, sequence: int,
               release_ok: Callable[[int], None] | None = None) -> tuple[Model, Held]:
        """Signature, hashes, expiry, release, a session, the golden rows: a ``BundleError`` saying which failed."""
        from .signing import read_signed, release_from_version

        if self.trust is not None:
            sb = read_signed(path, self.trust)
            if sb.digest != digest:
                raise BundleError(f"{path}: its manifest sha256 {sb.digest[:12]}… is not the {digest[:12]}… the "
                                  "channel names: another bundle was served under this name")
            release, expires = sb.release, sb.statement["predicate"].get("expires")
        else:
            try:
                release = release_from_version(version)
            except BundleError:
                release = 0
            expires = None
        if release_ok is not None:
            release_ok(release)
        model = load(path, manifest_sha256=digest)  # the bytes verified above, re-hashed as they are read
        if model.version != version:
            raise BundleError(f"{path}: the channel names version {version}, its manifest says {model.version}")
        report = model.verify()
        if not report.passed:
            raise BundleError(f"the golden rows fail on this device ({report.label_mismatches} label mismatches of "
                              f"{report.rows}, max abs diff {report.max_abs_diff:.3g} > bound {report.bound:g})")
        return model, Held(version, digest, int(release), str(expires) if expires else None, sequence)

    def start(self) -> bool:
        """Load the last good model from the state directory (current, else previous); False when there is none."""
        with self._lock:
            for held, is_current in ((self.held, True), (self.previous, False)):
                if held is None:
                    continue
                try:
                    model, h = self._prove(self.dir / "bundles" / held.digest, held.version, held.digest,
                                           held.sequence)
                except BundleError as exc:
                    self.last_error = str(exc)
                    continue
                self.model, self.held = model, h
                if not is_current:
                    self.previous = None
                return True
            return False

    # -- one update -------------------------------------------------------
    def _reject(self, version: str | None, reason: str, sequence: int | None = None) -> None:
        key = f"{version}|{reason}"
        if key == self._last_reject:  # the same refusal on every poll of an unchanged bad channel is said once
            return
        self._last_reject = key
        self.last_error = reason
        self._emit(UpdateEvent("rejected", version, reason, self.alias, self.held.version if self.held else None,
                               sequence))

    def _choose(self, offer: Offer) -> Offer | None:
        if self.pin is not None:
            for o in (offer, offer.previous, self.source.version(self.pin)):
                if o is not None and o.version == self.pin:
                    return o
            self._reject(offer.version, f"this device is pinned to {self.pin}", offer.sequence)
            return None
        if offer.rollout is not None and rollout_bucket(self.name, self.alias, offer.version,
                                                        self.device_id) >= offer.rollout:
            return offer.previous  # outside the share: the holder before (None: keep what runs)
        return offer

    def _stage_one(self, offer: Offer, staging: Path, name: str) -> None:
        digest, size = offer.files[name]
        data = self.source.fetch(offer, name)
        if size is not None and len(data) != size:
            raise BundleError(f"{offer.location}{name} is {len(data)} bytes, the channel says {size}: "
                              "the file was changed or is incomplete")
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            raise BundleError(f"{offer.location}{name} does not match the channel's sha256 "
                              f"({hashlib.sha256(data).hexdigest()[:8]}… vs {digest[:8]}…): the file was "
                              "changed after export")
        p = staging / name
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def _stage(self, offer: Offer) -> Path:
        """Every file into a staging folder, checked as it arrives. A few files at once: each request and fsync
        waits for the GIL again, and an app's busy threads hold it (8 predicting threads: 3.9 s one by one)."""
        from concurrent.futures import ThreadPoolExecutor

        if not is_digest(offer.digest):  # any source's digest becomes a folder here, replaced and removed
            raise BundleError(f"{self.source.description} names the digest {offer.digest[:80]!r}, not a sha256: "
                              "refused")
        staging = self.dir / f".staging-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir(parents=True)
        try:
            with ThreadPoolExecutor(max_workers=_FETCHERS, thread_name_prefix="skedge-fetch") as pool:
                for f in [pool.submit(self._stage_one, offer, staging, n) for n in sorted(offer.files)]:
                    f.result()  # the first failure, in file order
            dest = self.dir / "bundles" / offer.digest
            dest.parent.mkdir(exist_ok=True)
            if dest.exists():
                shutil.rmtree(dest)
            os.rename(staging, dest)
            return dest
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def update(self) -> bool:
        """Poll once; True when a new model was swapped in."""
        with self._lock:
            self._polled = time.perf_counter()
            if self.held is not None and _expired(self.held.expires):
                self.rollback(f"the signature of {self.held.version} expired at {self.held.expires}")
            try:
                offer = self.source.poll()
            except Unreachable as exc:
                self.last_error = str(exc)
                return False
            except BundleError as exc:
                self._reject(None, f"the channel is refused: {exc}")
                return False
            self.last_error = None
            if offer is None:
                return False
            if offer.sequence < self.sequence:
                self._reject(offer.version, f"the channel has sequence {offer.sequence}, lower than {self.sequence} "
                                            "which this device accepted before: an older channel was replayed",
                             offer.sequence)
                return False
            if _expired(offer.expires):
                self._reject(offer.version, f"the channel expired at {offer.expires}", offer.sequence)
                return False
            target = self._choose(offer)
            if target is None or (self.held is not None and target.digest == self.held.digest):
                self._accept_sequence(offer.sequence)
                return False
            if target.digest in self.bad:
                self._reject(target.version, self.bad[target.digest], offer.sequence)
                return False
            return self._install(target, offer)

    def _accept_sequence(self, sequence: int) -> None:
        if sequence > self.sequence:
            self.sequence = sequence
            if self.held is not None:
                self._write_state()

    def _install(self, target: Offer, offer: Offer) -> bool:
        held = self.held

        def release_ok(release: int) -> None:
            if held is not None and release < held.release and offer.kind != "rollback":
                raise _LowerRelease(f"release {release} is lower than the running {held.version}'s {held.release}, "
                                  "and the channel does not say it is a rollback: refused")

        try:
            path = self._stage(target)
        except Unreachable as exc:
            self.last_error = str(exc)
            self.source.etag = None  # a download cut short is tried again
            return False
        except BundleError as exc:  # a file the host serves wrong: asked again once the channel changes
            self._reject(target.version, str(exc), offer.sequence)
            return False
        try:
            model, new = self._prove(path, target.version, target.digest, offer.sequence, release_ok)
        except BundleError as exc:  # the bundle itself (its signature, session, golden rows): never taken
            shutil.rmtree(path, ignore_errors=True)
            if isinstance(exc, _LowerRelease):  # the same bundle may come back as a signed rollback
                self._reject(target.version, str(exc), offer.sequence)
                return False
            self.bad[target.digest] = f"{target.version} was refused on this device before: {exc}"
            if self.held is not None:
                self._write_state()
            self._reject(target.version, str(exc), offer.sequence)
            return False
        self.previous_model, self.previous = self.model, self.held
        self.model, self.held = model, new  # the swap: new calls read the new model, calls in flight keep theirs
        self.sequence = max(self.sequence, offer.sequence)
        self._write_state()
        self._last_reject = None
        self._emit(UpdateEvent("accepted", new.version, "verified: signature, hashes, golden rows on this device"
                               if self.trust is not None else "verified: hashes, golden rows on this device",
                               self.alias, held.version if held else None, offer.sequence,
                               time.perf_counter() - self._polled))
        return True

    def rollback(self, reason: str) -> bool:
        """Back to ``previous`` (kept verified in the state directory); the version left is not taken again."""
        with self._lock:
            if self.previous is None or self.held is None:
                return False
            model = self.previous_model
            if model is None:
                try:
                    model, _ = self._prove(self.dir / "bundles" / self.previous.digest, self.previous.version,
                                           self.previous.digest, self.previous.sequence)
                except BundleError as exc:
                    self.last_error = f"cannot roll back: {exc}"
                    return False
            left = self.held
            self.bad[left.digest] = f"{left.version} was rolled back on this device before ({reason})"
            self.model, self.held = model, self.previous
            self.previous_model, self.previous = None, None
            self._write_state()
            self._emit(UpdateEvent("rolled_back", self.held.version, reason, self.alias, left.version,
                                   self.sequence))
            return True
