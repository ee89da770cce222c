"""Where a live model's updates come from: a static channel (https URL or directory) or a registry directory.

A source answers two questions: ``poll()`` — what does the alias name now (an ``Offer``, or None when
nothing changed since the last poll: one conditional request, ETag / If-None-Match) — and ``fetch(offer,
name)`` — one file's bytes. Nothing here decides whether to trust an offer; the follower does
(``_follower.py``). The network is reached with the standard library's ``urllib`` only, and only here.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ._bundle import _inside, _parse_json
from ._errors import BundleError

__all__ = ["CHANNEL_FORMAT", "CHANNEL_TYPE", "Offer", "Source", "Unreachable", "channel_path", "open_source"]

CHANNEL_FORMAT = 1
CHANNEL_TYPE = "application/vnd.skedge.channel+json"
_TIMEOUT = 10.0
_MIN_RATE = 64 * 1024  # bytes/s a download may not stay under (plus _TIMEOUT): a slow link, not a stalled one
_MAX_CHANNEL = 1 << 20  # a channel is a few KB; a larger answer is not one


class Unreachable(BundleError):
    """The source could not be asked (network down, server error): not a verdict on any model."""


def channel_path(name: str, alias: str) -> str:
    return f"{name}/{alias}/channel.json"


@dataclass(frozen=True)
class Offer:
    """What a channel names for an alias: a bundle (its files, where to get them) and how it got there."""

    name: str
    alias: str
    version: str
    digest: str
    sequence: int
    kind: str  # "promote" or "rollback" (a signed rollback may name a lower release)
    files: Mapping[str, tuple[str | None, int | None]]  # name -> (sha256, size); None where the source says nothing
    location: str  # base URL or directory of the bundle's files
    expires: str | None = None
    rollout: float | None = None
    previous: Offer | None = None


class Source(Protocol):
    description: str
    etag: Any  # what the last poll saw; None makes the next poll fetch the channel whole

    def poll(self) -> Offer | None: ...

    def fetch(self, offer: Offer, name: str) -> bytes: ...

    def version(self, version: str) -> Offer | None: ...


def _open_envelope(raw: bytes, where: str, trust: Any) -> dict[str, Any]:
    from .signing import Envelope

    env = Envelope.from_json(_parse_json(raw, Path(where)), where)
    if trust is not None:
        from .signing import dsse_open, trusted_key

        body = dsse_open(env, trusted_key(trust), where, payload_type=CHANNEL_TYPE)
    else:
        if env.payload_type != CHANNEL_TYPE:
            raise BundleError(f"{where}: the envelope holds {env.payload_type!r}, not a skedge channel")
        body = env.payload
    return _parse_json(body, Path(where))


def _entry_offer(p: Mapping[str, Any], base: Mapping[str, Any], location: str, where: str) -> Offer:
    try:
        files = {str(k): (str(v["sha256"]), int(v["size"])) for k, v in dict(p["files"]).items()}
        bundle = str(p["bundle"])
        offer = Offer(str(base["name"]), str(base["alias"]), str(p["version"]), str(p["digest"]),
                      int(base["sequence"]), str(base.get("type") or "promote"), files, location + bundle)
    except (KeyError, TypeError, ValueError):
        raise BundleError(f"{where}: the channel lacks a field (version, digest, bundle, files): corrupt") from None
    if not all(_inside(n) for n in files) or not _inside(bundle.rstrip("/")):
        raise BundleError(f"{where} names a file outside its bundle: refused")
    if not is_digest(offer.digest):  # it names a folder on the device (staged, replaced, removed): hex only
        raise BundleError(f"{where} names the digest {offer.digest[:80]!r}, not a sha256: refused")
    return offer


def parse_channel(raw: bytes, where: str, trust: Any, name: str, alias: str, location: str) -> Offer:
    """The offer of a channel.json, its signature checked (with ``trust``) and its name/alias the asked ones."""
    p = _open_envelope(raw, where, trust)
    if p.get("kind") != "skedge-channel" or p.get("format") != CHANNEL_FORMAT:
        raise BundleError(f"{where} is not a skedge channel of format {CHANNEL_FORMAT}")
    if p.get("name") != name or p.get("alias") != alias:
        # a validly signed channel of another alias served in this one's place
        raise BundleError(f"{where} is the channel of {p.get('name')}@{p.get('alias')}, not {name}@{alias}: refused")
    prev = p.get("previous")
    previous = _entry_offer(prev, p, location, where) if isinstance(prev, dict) else None
    main = _entry_offer(p, p, location, where)
    rollout, expires, sequence = p.get("rollout"), p.get("expires"), p.get("sequence")
    # an unsigned channel is read too: a NaN share would take every device, a float or huge sequence would be
    # remembered and refuse every honest channel after it, a bad expiry would stop follow() as a ConfigError
    if not isinstance(sequence, int) or isinstance(sequence, bool) or not 0 <= sequence < 1 << 63:
        raise BundleError(f"{where}: its sequence {str(sequence)[:40]!r} is not a whole number: corrupt")
    if rollout is not None and (not isinstance(rollout, int | float) or isinstance(rollout, bool)
                                or not 0.0 <= rollout <= 1.0):
        raise BundleError(f"{where}: its rollout {str(rollout)[:40]!r} is not a share between 0 and 1: corrupt")
    if expires:
        from .signing import parse_time

        try:
            parse_time(str(expires))
        except ValueError:
            raise BundleError(f"{where}: its expiry {str(expires)[:40]!r} is not an ISO 8601 time: corrupt") from None
    return Offer(main.name, main.alias, main.version, main.digest, main.sequence, main.kind, main.files,
                 main.location, str(expires) if expires else None,
                 float(rollout) if rollout is not None else None, previous)


def _allowed_url(url: str) -> bool:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def _opener() -> Any:
    """urllib's opener, whose redirects must obey the rule the first URL did: urllib's own would follow an https
    channel to plain http on any host, or to ftp."""
    import urllib.error
    import urllib.request

    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            if not _allowed_url(newurl):
                raise urllib.error.HTTPError(newurl, code, f"redirected to {newurl[:200]}, which is not https "
                                             "(http only on 127.0.0.1): refused", headers, fp)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(Redirects)


class HttpSource:
    """A static export behind https (or http on the loopback interface, for tests and local mirrors)."""

    def __init__(self, url: str, name: str, alias: str, trust: Any) -> None:
        import urllib.parse  # urllib.request pulls in http.client and ssl: only an app that follows a URL pays

        if not _allowed_url(url):
            raise BundleError(f"{url}: a channel is fetched over https (http only from 127.0.0.1)")
        self.base = url.rstrip("/") + "/"
        self.name, self.alias, self.trust = name, alias, trust
        self.url = self.base + "/".join(urllib.parse.quote(x) for x in channel_path(name, alias).split("/"))
        self.description = self.url
        self.etag: str | None = None
        self.requests = 0
        self._opener = _opener()  # shared by the fetching threads, as urllib's own global opener is

    def _get(self, url: str, headers: dict[str, str], limit: int) -> tuple[int, bytes, Any]:
        import urllib.error
        import urllib.request

        self.requests += 1
        req = urllib.request.Request(url, headers={"User-Agent": "skedge-runtime", **headers})
        try:
            with self._opener.open(req, timeout=_TIMEOUT) as resp:
                # read by pieces: one read(limit) allocates the whole limit first, and the limit is the size a
                # channel claims (an unsigned one may claim a terabyte)
                # and against a deadline: the socket timeout is per read, so a server dribbling a byte every
                # few seconds held follow() (and an app's start on its kept model) for as long as it liked
                parts: list[bytes] = []
                got = 0
                deadline = time.monotonic() + _TIMEOUT + limit / _MIN_RATE
                while got <= limit:
                    piece = resp.read1(min(1 << 20, limit + 1 - got))
                    if not piece:
                        break
                    parts.append(piece)
                    got += len(piece)
                    if time.monotonic() > deadline:
                        raise Unreachable(f"{url}: slower than {_MIN_RATE // 1024} KB/s ({got} bytes in "
                                          f"{_TIMEOUT + limit / _MIN_RATE:.0f} s): tried again on the next poll")
                return resp.status, b"".join(parts), resp.headers
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return 304, b"", exc.headers
            raise Unreachable(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"{url}: cannot be reached ({reason})") from None

    def poll(self) -> Offer | None:
        status, data, headers = self._get(self.url, {"If-None-Match": self.etag} if self.etag else {}, _MAX_CHANNEL)
        if status == 304:
            return None
        if len(data) > _MAX_CHANNEL:
            raise BundleError(f"{self.url} is larger than {_MAX_CHANNEL} bytes: not a channel")
        offer = parse_channel(data, self.url, self.trust, self.name, self.alias, self.base + self.name + "/")
        self.etag = headers.get("ETag")  # remembered only once the channel parsed: a bad one is asked again
        return offer

    def fetch(self, offer: Offer, name: str) -> bytes:
        import urllib.parse

        size = offer.files[name][1]
        url = offer.location + "/".join(urllib.parse.quote(x) for x in name.split("/"))
        status, data, _ = self._get(url, {}, size if size is not None else 1 << 30)
        if status != 200:
            raise Unreachable(f"{url}: HTTP {status}")
        return data

    def version(self, version: str) -> Offer | None:
        return None  # a static channel serves its alias's holder and the previous one only


def _read_file(path: Path, size: int | None) -> bytes:
    """At most one byte more than the channel's size (a symlink to /dev/zero must not fill the memory); a file
    not there (yet) or unreadable is Unreachable: the download is tried again on the next poll."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size + 1) if size is not None and size >= 0 else fh.read()
    except OSError as exc:
        raise Unreachable(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None


class DirSource:
    """A static export on a local or mounted directory (the same files a web server would serve)."""

    def __init__(self, root: Path, name: str, alias: str, trust: Any) -> None:
        self.root, self.name, self.alias, self.trust = root, name, alias, trust
        self.path = root / channel_path(name, alias)
        self.description = str(self.path)
        self.etag: tuple[int, int, int] | None = None

    def poll(self) -> Offer | None:
        try:
            st = os.stat(self.path)
            raw = self.path.read_bytes()
        except FileNotFoundError:  # an unmounted share or an export not yet written: not a verdict on a model
            raise Unreachable(f"{self.path} does not exist: no channel for {self.name}@{self.alias}") from None
        except OSError as exc:
            raise Unreachable(f"{self.path}: cannot be read ({exc.strerror})") from None
        tag = (st.st_ino, st.st_mtime_ns, st.st_size)  # channel.json is replaced by rename: a new inode
        if tag == self.etag:
            return None
        offer = parse_channel(raw, str(self.path), self.trust, self.name, self.alias, str(self.root / self.name) + "/")
        self.etag = tag
        return offer

    def fetch(self, offer: Offer, name: str) -> bytes:
        return _read_file(Path(offer.location) / name, offer.files[name][1])

    def version(self, version: str) -> Offer | None:
        return None


class RegistrySource:
    """A registry directory: the alias's signed, hash-chained records are the channel."""

    def __init__(self, root: Path, name: str, alias: str, trust: Any) -> None:
        from .registry import log_dir, registry_info

        registry_info(root)
        self.root, self.name, self.alias, self.trust = root, name, alias, trust
        self.log = log_dir(root, name)
        self.description = f"{root} ({name}@{alias})"
        self.etag: int | None = None

    def _bundle_offer(self, version: str, digest: str, sequence: int, kind: str) -> Offer:
        d = self.root / "bundles" / digest
        files: dict[str, tuple[str | None, int | None]] = {}
        for dirpath, _dirs, names in os.walk(d, followlinks=False):
            for n in names:
                files[(Path(dirpath) / n).relative_to(d).as_posix()] = (None, None)  # the signature/manifest checks
        if not files:
            raise BundleError(f"{d} is missing: the registry is damaged; run skedge fsck")
        return Offer(self.name, self.alias, version, digest, sequence, kind, files, str(d) + "/")

    def poll(self) -> Offer | None:
        from .registry import alias_stacks, read_log

        try:
            head = len(os.listdir(self.log))  # the log only grows: its length is the ETag
        except FileNotFoundError:
            head = 0
        if head == self.etag:
            return None
        events = read_log(self.root, self.name, trust=self.trust)
        stack = alias_stacks(events).get(self.alias)
        if not stack:
            raise BundleError(f"{self.root}: no version of {self.name!r} holds the alias {self.alias!r}")
        top = stack[-1]
        kind = str(events[top.sequence - 1].payload.get("type"))
        prev = None
        if len(stack) > 1:
            prev = self._bundle_offer(stack[-2].version, stack[-2].digest, top.sequence, kind)
        offer = self._bundle_offer(top.version, top.digest, events[-1].sequence, kind)
        self.etag = head
        return Offer(offer.name, offer.alias, offer.version, offer.digest, offer.sequence, offer.kind, offer.files,
                     offer.location, previous=prev)

    def fetch(self, offer: Offer, name: str) -> bytes:
        return _read_file(Path(offer.location) / name, offer.files[name][1])

    def version(self, version: str) -> Offer | None:
        from .registry import versions

        claim = versions(self.root, self.name).get(version)
        if claim is None:
            return None
        return self._bundle_offer(version, str(claim["digest"]), 0, "pin")


def open_source(source: str | os.PathLike[str], name: str, alias: str, trust: Any) -> Source:
    text = os.fspath(source)
    if "://" in text:
        return HttpSource(text, name, alias, trust)
    root = Path(text)
    if (root / "registry.json").is_file():
        return RegistrySource(root, name, alias, trust)
    if root.is_dir() and not (root / channel_path(name, alias)).is_file() and not (root / name).is_dir():
        raise BundleError(f"{root} is neither a registry nor a static channel export holding "
                          f"{channel_path(name, alias)}")
    return DirSource(root, name, alias, trust)  # a missing directory may be a share not mounted yet


def is_digest(text: str) -> bool:
    """A sha256 in hex: what a bundle's folder on the device is named by."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
