"""Signed bundles: signing changes one file; loading with trust= refuses every kind of tampering."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from skedge.runtime import BundleError, load
from skedge.runtime.signing import (
    PAYLOAD_TYPE,
    SIGNATURE_FILE,
    dsse_sign,
    load_private_key,
    read_signed,
    sign_bundle,
    utc_now,
)

from .conftest import copy_bundle, rehash

ROWS = [{"island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 15.0, "flipper_length_mm": 217.0,
         "body_mass_g": 5200.0, "sex": "male", "year": 2008},
        {"island": "Dream", "bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181.0,
         "body_mass_g": 3750.0, "sex": "female", "year": 2007}]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_signing_adds_one_file_and_keeps_the_identity(penguins_bundle: Path, keys: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    b = copy_bundle(penguins_bundle, tmp_path / "b")
    before = _files(b)
    digest = load(b).digest
    sign_bundle(b, keys[0])
    after = _files(b)
    assert set(after) - set(before) == {SIGNATURE_FILE}
    assert all(after[n] == before[n] for n in before)
    env = json.loads(after[SIGNATURE_FILE])
    assert env["payloadType"] == PAYLOAD_TYPE
    import base64

    st = json.loads(base64.b64decode(env["payload"]))
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert {s["name"]: s["digest"]["sha256"] for s in st["subject"]} == {
        n: hashlib.sha256(d).hexdigest() for n, d in before.items()}
    assert st["predicate"]["name"] == "penguins" and st["predicate"]["version"] == "1.0.0"
    assert st["predicate"]["manifest_sha256"] == digest
    model = load(b, trust=keys[1])
    assert model.digest == digest
    plain = load(penguins_bundle)
    np.testing.assert_array_equal(model.predict_proba(ROWS), plain.predict_proba(ROWS))
    assert list(model.predict(ROWS)) == ["Gentoo", "Adelie"]
    assert model.verify().passed


def test_the_session_is_built_from_the_bytes_verified(signed: Path, keys: tuple[Path, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are read once: after verification nothing is read from disk again (not even for verify())."""
    model = load(signed, trust=keys[1])
    (signed / "golden.json").write_text("{}")  # changed on disk after load: the verified bytes are used
    (signed / "model.onnx").write_bytes(b"garbage")
    assert model.verify().passed


def _expect(bundle: Path, trust: Path, *needles: str) -> str:
    with pytest.raises(BundleError) as err:
        load(bundle, trust=trust)
    text = str(err.value)
    assert "\n" not in text
    for n in needles:
        assert n in text, text
    return text


def test_refuses_an_unsigned_bundle(penguins_bundle: Path, keys: tuple[Path, Path]) -> None:
    _expect(penguins_bundle, keys[1], f"{penguins_bundle}/signature.json is missing", "not signed")


def test_refuses_another_key(signed: Path, other_keys: tuple[Path, Path]) -> None:
    _expect(signed, other_keys[1], "signature.json is signed by another key")


def test_refuses_a_changed_file(signed: Path, keys: tuple[Path, Path]) -> None:
    data = bytearray((signed / "model.onnx").read_bytes())
    data[-1] ^= 1
    (signed / "model.onnx").write_bytes(bytes(data))
    _expect(signed, keys[1], f"{signed}/model.onnx does not match its signature", "changed after signing")


def test_refuses_a_consistent_tamper(signed: Path, keys: tuple[Path, Path]) -> None:
    """A model changed and its manifest re-hashed loads without trust; with trust it is refused."""
    import onnx

    m = onnx.load(signed / "model.onnx")
    m.producer_name = "someone else"
    onnx.save(m, signed / "model.onnx")
    rehash(signed)
    load(signed)  # the sha256 list alone catches accidents only: this passes
    _expect(signed, keys[1], "does not match its signature", "changed after signing")


def test_refuses_a_changed_signature(signed: Path, keys: tuple[Path, Path]) -> None:
    env = json.loads((signed / SIGNATURE_FILE).read_text())
    import base64

    st = json.loads(base64.b64decode(env["payload"]))
    st["predicate"]["version"] = "9.9.9"
    env["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    (signed / SIGNATURE_FILE).write_text(json.dumps(env))
    _expect(signed, keys[1], "the signature does not match what it signs")


def test_refuses_an_unlisted_file(signed: Path, keys: tuple[Path, Path]) -> None:
    (signed / "report" / "extra.py").write_text("print('hi')")
    _expect(signed, keys[1], f"{signed}/report/extra.py is not part of the signed bundle")


def test_refuses_a_symlink(signed: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    real = tmp_path / "card-copy.md"
    real.write_bytes((signed / "card.md").read_bytes())  # the same bytes: only the link is wrong
    (signed / "card.md").unlink()
    os.symlink(real, signed / "card.md")
    _expect(signed, keys[1], f"{signed}/card.md is a symlink")


def _sign_statement(bundle: Path, key: Path, edit: object) -> None:
    """Re-sign the statement after ``edit`` with the trusted key: what only a careless signer could produce."""
    import base64

    env = json.loads((bundle / SIGNATURE_FILE).read_text())
    st = json.loads(base64.b64decode(env["payload"]))
    edit(st)  # type: ignore[operator]
    new = dsse_sign(PAYLOAD_TYPE, json.dumps(st).encode(), load_private_key(key))
    (bundle / SIGNATURE_FILE).write_text(json.dumps(new.to_json()))


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.txt", "report/../../x"])
def test_refuses_a_path_outside_the_bundle(signed: Path, keys: tuple[Path, Path], name: str) -> None:
    _sign_statement(signed, keys[0], lambda st: st["subject"].append({"name": name, "digest": {"sha256": "0" * 64}}))
    _expect(signed, keys[1], "names a file outside the bundle", repr(name))


def test_refuses_an_expired_signature(penguins_bundle: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    b = copy_bundle(penguins_bundle, tmp_path / "b")
    sign_bundle(b, keys[0], expires=utc_now() - timedelta(seconds=1))
    _expect(b, keys[1], "signature.json: the signature expired at")
    sign_bundle(b, keys[0], expires=utc_now() + timedelta(days=1))
    assert load(b, trust=keys[1]).verify().passed


def test_refuses_a_golden_bound_looser_than_the_manifest(penguins_bundle: Path, keys: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    """Even signed: a golden.json whose tolerance was widened proves nothing."""
    b = copy_bundle(penguins_bundle, tmp_path / "b")
    g = json.loads((b / "golden.json").read_text())
    g["tolerance"]["abs"] = 0.5
    (b / "golden.json").write_text(json.dumps(g))
    rehash(b)
    sign_bundle(b, keys[0])
    _expect(b, keys[1], f"{b}/golden.json: its abs tolerance 0.5 is looser than the bound 1e-05")


def test_refuses_a_replayed_older_release(penguins_bundle: Path, keys: tuple[Path, Path], tmp_path: Path,
                                          state_dir: Path) -> None:
    old = copy_bundle(penguins_bundle, tmp_path / "old")
    sign_bundle(old, keys[0], release=1)
    new = copy_bundle(penguins_bundle, tmp_path / "new")
    sign_bundle(new, keys[0], release=2)
    load(old, trust=keys[1])  # the first release this reader sees
    load(new, trust=keys[1])
    _expect(old, keys[1], "release has sequence 1, lower than 2", "replayed")
    # another reader (its own state) has accepted nothing yet
    assert load(old, trust=keys[1], state_dir=tmp_path / "other-reader").version == "1.0.0"
    assert json.loads((state_dir / "accepted.json").read_text())


def test_verify_cli_checks_the_signature_first(signed: Path, keys: tuple[Path, Path], other_keys: tuple[Path, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    before = _files(signed)
    assert main(["verify", str(signed), "--trust", str(keys[1])]) == 0
    out = capsys.readouterr().out
    assert "signed: penguins 1.0.0, release 1000000000000" in out and "parity: pass" in out
    bad = subprocess.run([sys.executable, "-m", "skedge.cli", "verify", str(signed), "--trust", str(other_keys[1])],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    assert bad.stderr.count("\n") == 1 and "signed by another key" in bad.stderr and "Traceback" not in bad.stderr
    assert _files(signed) == before  # verify writes nothing into a signed bundle: it stays a closed set
    assert read_signed(signed, keys[1]).release == 1000000000000


def test_without_cryptography_one_line_names_the_extra(signed: Path, keys: tuple[Path, Path]) -> None:
    code = ("import sys; sys.modules['cryptography'] = None\n"
            "from skedge.runtime import load, BundleError\n"
            f"try:\n    load({str(signed)!r}, trust={str(keys[1])!r})\n"
            "except BundleError as e:\n    print(e)\n"
            "import skedge.runtime; load(" + repr(str(signed)) + ")\nprint('plain load ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "needs the 'cryptography' package: pip install 'skedge[sign]'" in out.stdout, out.stderr
    assert "plain load ok" in out.stdout


def test_the_runtime_imports_cryptography_only_for_trust() -> None:
    code = "import sys, skedge.runtime; print('cryptography' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_a_bare_model_file_cannot_be_trusted(signed: Path, keys: tuple[Path, Path]) -> None:
    _expect(signed / "model.onnx", keys[1], "a bare model file carries no signature")


def test_where_a_reader_keeps_what_it_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skedge.runtime.signing import state_dir_for

    monkeypatch.setenv("SKEDGE_STATE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir_for(tmp_path / "given") == tmp_path / "given"
    assert state_dir_for(None) == tmp_path / "a"
    monkeypatch.delenv("SKEDGE_STATE_DIR")
    assert state_dir_for(None) == tmp_path / "xdg" / "skedge"


def test_keygen_never_overwrites_and_keeps_the_key_private(tmp_path: Path) -> None:
    from skedge.runtime.signing import generate_keypair

    priv, pub = generate_keypair(tmp_path / "k")
    assert os.stat(priv).st_mode & 0o077 == 0 and pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(BundleError, match="a key is never overwritten"):
        generate_keypair(tmp_path / "k")


def test_cli_refuses_to_sign_with_an_expiry_already_past(penguins_bundle: Path, keys: tuple[Path, Path],
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    b = copy_bundle(penguins_bundle, tmp_path / "b")
    assert main(["sign", str(b), "--key", str(keys[0]), "--expires", "2020-01-01"]) == 1
    assert "already past" in capsys.readouterr().err
    assert not (b / "signature.json").exists()
