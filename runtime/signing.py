"""Signed bundles: a DSSE envelope over an in-toto statement, Ed25519 (DESIGN.md "Signing, registry").

``signature.json`` is the one file signing adds. Its statement's subjects are every other file of the
bundle with its sha256 (the shape OpenSSF model signing uses), and its predicate binds the model's name,
version, a release number that only grows, the manifest's sha256 (the bundle's identity) and an optional
expiry. Signing changes no other file, so a bundle's identity is the same signed or not.

Verification (``read_signed``, used by ``load(path, trust=PUB)`` and ``skedge verify --trust``) goes in
this order, so nothing unverified is parsed beyond the envelope: the signature over the statement; then
the directory's listing (no symlink, no file the statement does not name, no name outside the bundle);
then every file's bytes against the signed sha256 — the bytes kept in memory are what the session and
``verify()`` use, never a second read from disk; then the manifest against the statement (same digests,
name, version) and the golden bound against the manifest's.

``cryptography`` is needed only here and only when a signature is made or checked: the base runtime
install stays numpy + onnxruntime; ``pip install 'skedge[sign]'`` adds it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._bundle import BUNDLE_FORMAT, Bundle, _inside, _parse_json
from ._errors import BundleError, ConfigError

__all__ = [
    "SIGNATURE_FILE", "PAYLOAD_TYPE", "STATEMENT_TYPE", "PREDICATE_TYPE", "SignedBundle", "Envelope",
    "TrustedKey", "trusted_key", "generate_keypair", "load_private_key", "sign_bundle", "read_signed",
    "dsse_sign", "dsse_open", "release_from_version", "state_dir_for", "StateFile", "utc_now", "parse_time",
    "read_model_signed", "verified_files",
]

SIGNATURE_FILE = "signature.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://skedge.dev/bundle-signature/v1"
_EXTRA = "pip install 'skedge[sign]'"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ModuleNotFoundError:
        raise BundleError(f"checking or making a signature needs the 'cryptography' package: {_EXTRA}") from None
    return ed25519


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(text: str) -> datetime:
    """ISO 8601; no zone means UTC ("2026-12-01T10:00", "2026-12-01", "...Z")."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        # ConfigError is a ValueError: a bad --at/--expires is the caller's argument, one line in the CLI
        raise ConfigError(f"{text!r} is not an ISO 8601 time (e.g. 2026-12-01T10:00:00Z)") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed, so the type cannot be swapped under a signature."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


# -- keys -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrustedKey:
    """A public key a reader trusts, with its id (sha256 of the raw 32-byte key, as in signature.json)."""

    key: Any
    keyid: str
    source: str


def _keyid(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def trusted_key(trust: str | os.PathLike[str] | bytes | TrustedKey) -> TrustedKey:
    """The public key in ``trust``: a PEM file's path, PEM bytes, or a ``TrustedKey`` already read."""
    if isinstance(trust, TrustedKey):
        return trust
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    if isinstance(trust, bytes):
        pem, source = trust, "the trusted key"
    else:
        source = str(trust)
        try:
            pem = Path(trust).read_bytes()
        except OSError as exc:
            raise BundleError(f"{source}: cannot read the trusted public key ({exc.strerror})") from None
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise BundleError(f"{source} is not a PEM public key (skedge keygen writes one: skedge.pub)") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise BundleError(f"{source} is not an Ed25519 public key (skedge keygen writes one)")
    return TrustedKey(key, _keyid(key), source)


def load_private_key(path: str | os.PathLike[str]) -> Any:
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the private key ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise BundleError(f"{path} is not an unencrypted PEM private key (skedge keygen writes one)") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 private key (skedge keygen writes one)")
    return key


def generate_keypair(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``skedge.key`` (private, mode 0600, created so: never readable by others) and ``skedge.pub``."""
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = d / "skedge.key", d / "skedge.pub"
    for p in (priv_path, pub_path):
        if p.exists():
            raise BundleError(f"{p} exists: a key is never overwritten; choose another --out")
    key = ed25519.Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(priv)
        fh.flush()
        os.fsync(fh.fileno())
    pub_path.write_bytes(pub)
    return priv_path, pub_path


# -- DSSE -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)

    def to_json(self) -> dict[str, Any]:
        return {"payloadType": self.payload_type, "payload": base64.b64encode(self.payload).decode("ascii"),
                "signatures": [{"keyid": k, "sig": base64.b64encode(s).decode("ascii")} for k, s in self.signatures]}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Envelope:
        try:
            sigs = tuple((str(s["keyid"]), base64.b64decode(s["sig"], validate=True)) for s in data["signatures"])
            return cls(str(data["payloadType"]), base64.b64decode(data["payload"], validate=True), sigs)
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"{where} is not a DSSE envelope (payloadType, payload, signatures): the file is "
                              "corrupt; sign the bundle again") from None


def dsse_sign(payload_type: str, payload: bytes, private_key: Any) -> Envelope:
    sig = private_key.sign(_pae(payload_type, payload))
    return Envelope(payload_type, payload, ((_keyid(private_key.public_key()), sig),))


def dsse_open(env: Envelope, key: TrustedKey, where: str, *, payload_type: str) -> bytes:
    """The payload, once a signature by ``key`` over it checks; else ``BundleError`` naming ``where``."""
    from cryptography.exceptions import InvalidSignature

    if env.payload_type != payload_type:
        raise BundleError(f"{where}: the envelope holds {env.payload_type!r}, expected {payload_type!r}")
    if not env.signatures:
        raise BundleError(f"{where} carries no signature")
    mine = [s for k, s in env.signatures if k == key.keyid]
    if not mine:
        ids = ", ".join(k[:12] + "…" for k, _ in env.signatures)
        raise BundleError(f"{where} is signed by another key (key id {ids}; trusted {key.keyid[:12]}… from "
                          f"{key.source}): not a release of the key you trust")
    for sig in mine:
        try:
            key.key.verify(sig, _pae(env.payload_type, env.payload))
            return env.payload
        except InvalidSignature:
            continue
    raise BundleError(f"{where}: the signature does not match what it signs: the file was changed after signing")


# -- signing a bundle -------------------------------------------------------------------------------

def release_from_version(version: str) -> int:
    """The default release number: semver packed so that a later version has a larger number."""
    core = version.split("+", 1)[0].split("-", 1)[0].split(".")
    try:
        major, minor, patch = (int(x) for x in core)
    except ValueError:
        raise BundleError(f"version {version!r} is not semver (MAJOR.MINOR.PATCH): give --release N") from None
    return major * 10**12 + minor * 10**6 + patch


def _listing(root: Path) -> list[str]:
    """Every file under ``root`` but signature.json, as POSIX relative names; a symlink or a special file
    is refused (naming it), since what it points to is not part of what was signed."""
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for n in sorted(dirnames + filenames):
            p = d / n
            st = os.lstat(p)
            rel = p.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                raise BundleError(f"{p} is a symlink: a signed bundle holds only regular files; replace it with "
                                  "the file itself")
            if stat.S_ISREG(st.st_mode):
                if rel != SIGNATURE_FILE:
                    names.append(rel)
            elif not stat.S_ISDIR(st.st_mode):
                raise BundleError(f"{p} is not a regular file: a signed bundle holds only regular files")
    return sorted(names)


def _read_nofollow(p: Path) -> bytes:
    """A file's bytes, refusing a symlink swapped in after the listing (O_NOFOLLOW)."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise BundleError(f"{p} is named in the signature but missing: the bundle is incomplete") from None
    except OSError as exc:
        raise BundleError(f"{p} cannot be read safely ({exc.strerror}): a symlink or a special file?") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise BundleError(f"{p} is not a regular file")
        return fh.read()


def sign_bundle(bundle: str | os.PathLike[str], key: str | os.PathLike[str] | Any, *, release: int | None = None,
                expires: datetime | None = None) -> Path:
    """Add ``signature.json`` to a bundle (the one file written; an existing one is replaced atomically)."""
    from ._bundle import read_bundle

    root = Path(bundle)
    b = read_bundle(root, verify_hashes=True)  # sign only what is whole: a damaged bundle is refused first
    private_key = key if not isinstance(key, str | os.PathLike) else load_private_key(key)
    names = _listing(root)
    unlisted = sorted(set(names) - set(b.files) - {"manifest.json"})
    if unlisted:
        raise BundleError(f"{root / unlisted[0]} is not listed in the manifest: only what was exported is signed; "
                          "remove it first")
    subjects = [{"name": n, "digest": {"sha256": hashlib.sha256(_read_nofollow(root / n)).hexdigest()}}
                for n in names]
    version = str(b.manifest.get("version"))
    predicate = {"name": b.manifest.get("name"), "version": version,
                 "release": release_from_version(version) if release is None else int(release),
                 "manifest_sha256": b.digest, "signed_at": _iso(utc_now()),
                 "expires": _iso(expires) if expires is not None else None}
    statement = {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE,
                 "predicate": predicate}
    env = dsse_sign(PAYLOAD_TYPE, _canonical(statement), private_key)
    out = root / SIGNATURE_FILE
    tmp = root / f".{SIGNATURE_FILE}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(env.to_json(), indent=1, sort_keys=True).encode("utf-8") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    _fsync_dir(root)
    return out


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading a signed bundle -----------------------------------------------------------------------

@dataclass(frozen=True)
class SignedBundle(Bundle):
    """A bundle whose every file was read once, checked against a trusted signature, and kept in memory:
    ``read`` answers from those bytes, so what was verified is what is used."""

    data: Mapping[str, bytes] = field(default_factory=dict)
    statement: Mapping[str, Any] = field(default_factory=dict)
    keyid: str = ""
    signature: bytes = b""  # signature.json as read and verified (a registry stores these very bytes)

    @property
    def release(self) -> int:
        return int(self.statement["predicate"]["release"])

    def read(self, name: str) -> bytes:
        if name not in self.data:
            raise BundleError(f"{self.path / name} is not part of the signed bundle")
        return self.data[name]

    def check(self, name: str) -> None:
        self.read(name)

    def check_all(self, *, skip: str | None = None) -> None:
        return None  # every file was checked when it was read


def _statement(root: Path, key: TrustedKey) -> tuple[dict[str, Any], bytes]:
    """(the verified statement, signature.json's bytes)."""
    sig_path = root / SIGNATURE_FILE
    if sig_path.is_symlink():
        raise BundleError(f"{sig_path} is a symlink: a signed bundle holds only regular files")
    if not sig_path.is_file():
        raise BundleError(f"{sig_path} is missing: the bundle is not signed (sign it: skedge sign BUNDLE --key KEY)")
    raw = _read_nofollow(sig_path)
    env = Envelope.from_json(_parse_json(raw, sig_path), str(sig_path))
    payload = dsse_open(env, key, str(sig_path), payload_type=PAYLOAD_TYPE)
    st = _parse_json(payload, sig_path)
    if st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != PREDICATE_TYPE \
            or not isinstance(st.get("subject"), list) or not isinstance(st.get("predicate"), dict):
        raise BundleError(f"{sig_path}: the signed statement is not a skedge bundle statement")
    return st, raw


def read_signed(path: str | os.PathLike[str], trust: Any, *, now: datetime | None = None) -> SignedBundle:
    """Verify a signed bundle and return it with every file's bytes; ``BundleError`` naming the file otherwise."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root} is not a bundle directory")
    key = trusted_key(trust)
    st, sig_raw = _statement(root, key)
    sig_path = root / SIGNATURE_FILE
    pred = st["predicate"]
    expires = pred.get("expires")
    if expires is not None:
        try:
            deadline = parse_time(str(expires))
        except ValueError:
            raise BundleError(f"{sig_path}: the signed expiry {expires!r} is not a time") from None
        if (now or utc_now()) >= deadline:
            raise BundleError(f"{sig_path}: the signature expired at {expires}: this release may no longer be "
                              "used; load a newer one (or sign it again with a later --expires)")
    digests: dict[str, str] = {}
    for s in st["subject"]:
        try:
            name, digest = str(s["name"]), str(s["digest"]["sha256"])
        except (KeyError, TypeError):
            raise BundleError(f"{sig_path}: a subject has no name and sha256: the statement is corrupt") from None
        if not _inside(name) or name == SIGNATURE_FILE:
            raise BundleError(f"{sig_path} names a file outside the bundle: {name!r}; the signature is refused")
        digests[name] = digest
    present = _listing(root)
    extra = sorted(set(present) - set(digests))
    if extra:
        raise BundleError(f"{root / extra[0]} is not part of the signed bundle: a file was added after signing; "
                          "remove it, or sign the bundle again")
    data: dict[str, bytes] = {}
    for name, digest in sorted(digests.items()):
        raw = _read_nofollow(root / name)
        got = hashlib.sha256(raw).hexdigest()
        if got != digest:
            raise BundleError(f"{root / name} does not match its signature (sha256 {got[:8]}… signed {digest[:8]}…): "
                              "the file was changed after signing; restore it")
        data[name] = raw
    if "manifest.json" not in data:
        raise BundleError(f"{sig_path} does not sign manifest.json: not a skedge bundle signature")
    manifest_raw = data["manifest.json"]
    manifest = _parse_json(manifest_raw, root / "manifest.json")
    digest = hashlib.sha256(manifest_raw).hexdigest()
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{root}/manifest.json has bundle format {manifest.get('format')!r}; this skedge reads "
                          f"format {BUNDLE_FORMAT}")
    if pred.get("manifest_sha256") != digest or pred.get("name") != manifest.get("name") \
            or str(pred.get("version")) != str(manifest.get("version")):
        raise BundleError(f"{sig_path}: the signature is for {pred.get('name')} {pred.get('version')}, not for this "
                          "manifest.json: the signature belongs to another bundle")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{root}/manifest.json lists no files: the manifest is corrupt")
    for name, meta in files.items():
        if not isinstance(meta, dict) or name not in data or meta.get("sha256") != digests[name] \
                or meta.get("size") != len(data[name]):
            raise BundleError(f"{root / str(name)}: the manifest and the signature disagree about this file: the "
                              "manifest was changed after signing")
    _check_golden_bound(root, manifest, data)
    return SignedBundle(path=root, manifest=manifest, digest=digest, data=data, statement=st, keyid=key.keyid,
                        signature=sig_raw)


def _check_golden_bound(root: Path, manifest: dict[str, Any], data: Mapping[str, bytes]) -> None:
    """golden.json's tolerance may not be looser than the bound the manifest states for any target:
    a verify that passes only because its bound was widened proves nothing."""
    if "golden.json" not in data:
        return
    golden = _parse_json(data["golden.json"], root / "golden.json")
    tol = golden.get("tolerance")
    parity = manifest.get("parity")
    if not isinstance(tol, dict) or not isinstance(parity, dict):
        return
    bounds = [r["bound"] for r in parity.values() if isinstance(r, dict) and isinstance(r.get("bound"), int | float)]
    if not bounds:
        return
    limit = max(bounds)
    for k in ("abs", "rel"):
        v = tol.get(k)
        if isinstance(v, int | float) and v > limit:
            raise BundleError(f"{root / 'golden.json'}: its {k} tolerance {v:g} is looser than the bound {limit:g} "
                              "the signed manifest states: golden.json was changed; restore it")


# -- what a reader accepted (replay protection) -----------------------------------------------------

def state_dir_for(state_dir: str | os.PathLike[str] | None) -> Path:
    """``state_dir``, else ``$SKEDGE_STATE_DIR``, else ``$XDG_STATE_HOME/skedge`` (``~/.local/state/skedge``)."""
    if state_dir is not None:
        return Path(state_dir)
    if os.environ.get("SKEDGE_STATE_DIR"):
        return Path(os.environ["SKEDGE_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "skedge"


class StateFile:
    """The highest sequence (or release) a reader accepted per key; a lower one later is a replay."""

    def __init__(self, state_dir: str | os.PathLike[str] | None) -> None:
        self.path = state_dir_for(state_dir) / "accepted.json"

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError):
            raise BundleError(f"{self.path} (what this reader accepted before) is unreadable: restore it; "
                              "deleting it gives up replay protection for what it held") from None
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def check(self, key: str, value: int, what: str) -> None:
        seen = self._read().get(key)
        if seen is not None and value < seen:
            raise BundleError(f"{what} has sequence {value}, lower than {seen} which this reader accepted before "
                              f"({self.path}): an older state was replayed; refused")

    def accept(self, key: str, value: int) -> None:
        data = self._read()
        if data.get(key, -1) >= value:
            return
        data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".accepted.json.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def read_model_signed(path: Path, trust: Any, target: str, *, state_dir: str | os.PathLike[str] | None = None,
                      check_release: bool = True) -> tuple[SignedBundle, bytes, Any]:
    """For ``load(path, trust=)``: (the verified bundle, the model's verified bytes, accept()).

    ``check_release``: refuse a release lower than one this reader accepted for the same model and key
    (a replayed older release); off when an alias record, itself replay-checked, names the bundle.
    """
    from ._bundle import MODEL_FILES

    if not path.is_dir():
        raise BundleError(f"{path} is not a bundle directory: a bare model file carries no signature "
                          "(load the signed bundle)")
    if target not in MODEL_FILES:
        raise BundleError(f"unknown target {target!r}; expected one of {sorted(MODEL_FILES)}")
    b = read_signed(path, trust)
    model_file = MODEL_FILES[target]
    if model_file not in b.data:
        raise BundleError(f"{path} has no {model_file} (the signature lists {', '.join(sorted(b.data))})")
    accept = None
    if check_release:
        state = StateFile(state_dir)
        key = f"release:{b.keyid}:{b.manifest.get('name')}"
        state.check(key, b.release, f"{path / SIGNATURE_FILE}: release")

        def accept() -> None:
            state.accept(key, b.release)
    return b, b.data[model_file], accept


def verified_files(src: str | os.PathLike[str], trust: Any = None
                   ) -> tuple[dict[str, Any], str, dict[str, bytes], bool]:
    """(manifest, identity, every file's checked bytes, signed?) of a bundle directory, for a tool that passes the
    bundle on (the registry's publish, ``skedge package``): with ``trust`` the signature first, then every file
    against it; without, every file against the manifest as it is read. Nothing is read again after its check,
    and a signature.json present is carried as it is, so an app with the key can check it."""
    from ._bundle import read_bundle

    src = Path(src)
    if trust is not None:
        sb = read_signed(src, trust)
        files = dict(sb.data)
        files[SIGNATURE_FILE] = sb.signature
        return dict(sb.manifest), sb.digest, files, True
    b = read_bundle(src, verify_hashes=False)
    files = {n: b.read(n) for n in sorted(b.files)}  # each checked against the manifest as it is read
    files["manifest.json"] = (src / "manifest.json").read_bytes()
    if hashlib.sha256(files["manifest.json"]).hexdigest() != b.digest:
        raise BundleError(f"{src}/manifest.json changed while it was being read: try again")
    signed = (src / SIGNATURE_FILE).is_file()
    if signed:
        files[SIGNATURE_FILE] = (src / SIGNATURE_FILE).read_bytes()
    return dict(b.manifest), b.digest, files, signed
