"""A registry's aliases as a static channel any web server, bucket or CDN can serve (issue 15).

    OUT/<name>/<alias>/channel.json            one signed DSSE envelope per alias (the only file that changes)
    OUT/<name>/bundles/<manifest sha256>/...   the bundles the channels name, immutable, byte for byte the registry's

The channel's payload names the model, the alias, the version, the alias record's sequence number (a
reader refuses a lower one: a replayed channel), the kind of move (``promote``/``rollback``: a rollback
may name a lower release), sha256 and size of every file, an optional expiry and rollout share, and the
previous holder (what a device outside the rollout share runs). Updating an existing ``OUT`` in place
writes bundle files first and ``channel.json`` last, each under a temporary name, fsynced, renamed: a
reader never sees a channel naming files that are not there yet. Bundles are never removed here: a
device may be downloading the one a channel named a moment ago.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from skedge.runtime import BundleError
from skedge.runtime._channel import CHANNEL_FORMAT, CHANNEL_TYPE, channel_path
from skedge.runtime.registry import Holder, alias_stacks, canonical, read_log, registry_info
from skedge.runtime.signing import Envelope, dsse_sign, load_private_key, trusted_key

from ._fs import fsync_dir
from ._store import bundle_path, iso, trust_of

__all__ = ["export_static", "Exported"]


@dataclass(frozen=True)
class Exported:
    alias: str
    version: str
    sequence: int
    channel: Path
    files_written: int  # bundle files written by this call (0: all were there already)


def _files(bundle: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every regular file of a stored bundle (a symlink is refused: it is not content)."""
    out: dict[str, dict[str, Any]] = {}
    for dirpath, _dirs, names in os.walk(bundle, followlinks=False):
        for n in names:
            p = Path(dirpath) / n
            if p.is_symlink() or not p.is_file():
                raise BundleError(f"{p} is not a regular file: the registry is damaged; run skedge fsck")
            data = p.read_bytes()
            out[p.relative_to(bundle).as_posix()] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return dict(sorted(out.items()))


def _check_stored(src: Path, holder: Holder, trust: Any, name: str) -> None:
    """The stored bundle as fsck checks it, before its hashes are signed into a channel: a damaged one would be
    downloaded by every device, refused, and never taken again (a device remembers what it refused)."""
    from skedge.runtime._bundle import read_bundle
    from skedge.runtime.signing import read_signed

    try:
        b = read_signed(src, trust) if trust is not None else read_bundle(src, verify_hashes=True)
    except BundleError as exc:
        raise BundleError(f"{name}@{holder.version} is damaged in the registry, nothing exported: {exc} "
                          "(skedge fsck --registry REG)") from None
    if b.digest != holder.digest:
        raise BundleError(f"{name}@{holder.version}: {src} is not the bundle the alias names, nothing exported "
                          "(skedge fsck --registry REG)")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _copy_bundle(src: Path, dest: Path, files: dict[str, dict[str, Any]]) -> int:
    written = 0
    for rel, meta in files.items():
        target = dest / rel
        if target.is_file() and target.stat().st_size == meta["size"] and \
                hashlib.sha256(target.read_bytes()).hexdigest() == meta["sha256"]:
            continue
        data = (src / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise BundleError(f"{src / rel} changed while it was being exported: try again")
        _write_atomic(target, data)
        written += 1
    return written


def _entry(holder: Holder, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"version": holder.version, "digest": holder.digest, "bundle": f"bundles/{holder.digest}/", "files": files}


def export_static(reg: str | os.PathLike[str], name: str, out: str | os.PathLike[str], *,
                  key: str | os.PathLike[str] | None = None, aliases: list[str] | None = None,
                  expires: datetime | None = None, rollout: float | None = None) -> list[Exported]:
    """Write (or update in place) the static channel of ``name``'s aliases under ``out``."""
    root, dest = Path(reg), Path(out)
    info = registry_info(root)
    trust = trust_of(info)
    private = None
    if key is not None:
        private = load_private_key(key)
        if trust is not None:
            from skedge.runtime.signing import _keyid

            if _keyid(private.public_key()) != trusted_key(trust).keyid:
                raise BundleError(f"{key} is not the key {root} trusts: devices trusting it could not read the channel")
    elif trust is not None:
        raise BundleError(f"{root} requires signatures: its channel must be signed too; give --key KEY")
    if rollout is not None and not 0.0 <= rollout <= 1.0:
        raise BundleError(f"--rollout {rollout}: a share between 0 and 1 (0.1 = one device in ten)")
    if dest.resolve() == root.resolve() or root.resolve() in dest.resolve().parents:
        raise BundleError(f"--out {dest} is inside the registry {root}: export to a folder of its own")
    events = read_log(root, name, trust=trust)
    stacks = {a: s for a, s in alias_stacks(events).items() if s}
    wanted = aliases or sorted(stacks)
    if not wanted:
        raise BundleError(f"{root}: no alias of {name!r} is held: nothing to export (skedge promote first)")
    done: list[Exported] = []
    for alias in wanted:
        stack = stacks.get(alias)
        if not stack:
            raise BundleError(f"{root}: no version of {name!r} holds the alias {alias!r}")
        top = stack[-1]
        ev = events[top.sequence - 1]
        entries, written = [], 0
        for h in stack[-2:][::-1]:  # the holder, then the one before it (for devices outside the rollout)
            src = bundle_path(root, h.digest)
            _check_stored(src, h, trust, name)
            files = _files(src)
            written += _copy_bundle(src, dest / name / "bundles" / h.digest, files)
            entries.append(_entry(h, files))
        payload = {"format": CHANNEL_FORMAT, "kind": "skedge-channel", "name": name, "alias": alias,
                   **entries[0], "sequence": top.sequence, "type": str(ev.payload.get("type")),
                   "expires": iso(expires) if expires is not None else None, "rollout": rollout,
                   "previous": entries[1] if len(entries) > 1 else None, "exported": iso()}
        body = canonical(payload)
        env = dsse_sign(CHANNEL_TYPE, body, private) if private is not None else Envelope(CHANNEL_TYPE, body, ())
        path = dest / channel_path(name, alias)
        for d in {dest / name / "bundles" / e["digest"] for e in entries}:  # bundle directories durable first
            fsync_dir(d)
        _write_atomic(path, json.dumps(env.to_json(), indent=1, sort_keys=True).encode("utf-8") + b"\n")
        done.append(Exported(alias, top.version, top.sequence, path, written))
    return done


# -- a local server for an export (tests, benchmarks, a LAN mirror) ---------------------------------

class StaticServer:
    """``OUT`` over http on 127.0.0.1 with strong ETags (sha256 of the bytes) and ``If-None-Match``, the way a
    CDN or bucket answers, in a thread of this process; it counts requests, 304s and bytes both ways.

    ``override[path] = bytes`` serves other bytes for one URL path (a changed file on the host, in tests).
    Python's ``SimpleHTTPRequestHandler`` answers ``If-Modified-Since`` only, whose one-second resolution
    would hide a channel rewritten within the same second: an ETag over the content cannot.
    """

    def __init__(self, directory: str | os.PathLike[str], port: int = 0) -> None:
        import http.server
        import threading

        self.directory = Path(directory)
        self.override: dict[str, bytes] = {}
        self.requests: list[tuple[str, int]] = []  # (path, status)
        self.bytes_in = self.bytes_out = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                return None

            def do_GET(self) -> None:
                from urllib.parse import unquote, urlsplit

                path = unquote(urlsplit(self.path).path)
                owner.bytes_in += len(self.requestline) + 2 + len(bytes(self.headers)) + 2
                body = owner.override.get(path)
                if body is None:
                    f = (owner.directory / path.lstrip("/")).resolve()
                    if owner.directory.resolve() not in f.parents or not f.is_file():
                        return self._send(404, b"not found\n", None)
                    body = f.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                if self.headers.get("If-None-Match") == etag:
                    return self._send(304, b"", etag)
                return self._send(200, body, etag)

            def _send(self, status: int, body: bytes, etag: str | None) -> None:
                from urllib.parse import unquote, urlsplit

                owner.requests.append((unquote(urlsplit(self.path).path), status))
                self.send_response(status)
                if etag:
                    self.send_header("ETag", etag)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                owner.bytes_out += len(body)

            def flush_headers(self) -> None:  # the status line and headers, counted as they leave
                owner.bytes_out += sum(len(b) for b in getattr(self, "_headers_buffer", []))
                super().flush_headers()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
