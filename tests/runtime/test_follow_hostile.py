"""`follow` against a channel it should not believe (the hostile trial of issue 15): an unsigned channel is
read too (``trust=None``), so every field it names must be checked before it names a folder, a share or a
sequence on the device; an http(s) channel's redirects obey the rule its first URL did."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from skedge.runtime import BundleError, follow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, penguins_bundle: Path) -> Path:
    """An unsigned registry's static export: penguins 1.0.0 holding prod."""
    from skedge.registry import init_registry, promote, publish
    from skedge.registry.static import export_static

    d = tmp_path_factory.mktemp("hostile")
    reg = init_registry(d / "reg")
    publish(penguins_bundle, reg)
    promote(reg, "penguins", "1.0.0", "prod", force=True, reason="test")
    export_static(reg, "penguins", d / "site")
    return d / "site"


def _crafted(site: Path, dest: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    shutil.copytree(site, dest)
    channel = dest / "penguins" / "prod" / "channel.json"
    env = json.loads(channel.read_text())
    body = json.loads(base64.b64decode(env["payload"]))
    edit(body)
    env["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    channel.write_text(json.dumps(env))
    return dest


def test_the_untouched_export_is_followed(site: Path, tmp_path: Path) -> None:
    with follow(site, name="penguins", alias="prod", state_dir=tmp_path / "state", every=600) as live:
        assert live.model.version == "1.0.0"


def test_a_digest_that_climbs_out_of_the_state_directory_removes_nothing(site: Path, tmp_path: Path) -> None:
    # the digest names the bundle's folder on the device, which is replaced (rmtree) and removed on failure:
    # before the check a crafted one deleted any directory the process could write
    state = tmp_path / "state"
    (state / "follow" / "penguins@prod" / "bundles").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")

    def climb(b: dict[str, Any]) -> None:
        b["digest"] = "../../../../victim"
        b["previous"] = None

    evil = _crafted(site, tmp_path / "evil", climb)
    with pytest.raises(BundleError, match="not a sha256"):
        follow(evil, name="penguins", alias="prod", state_dir=state, every=600)
    assert (victim / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize(("field", "value", "words"), [
    ("rollout", float("nan"), "not a share"),       # NaN compared false: every device took the update
    ("rollout", -1, "not a share"),
    ("sequence", 1e300, "not a whole number"),      # remembered, it refused every honest channel after it
    ("sequence", 2.5, "not a whole number"),
    ("expires", "soon", "not an ISO 8601 time"),    # was a ConfigError out of follow() naming "--expires"
])
def test_a_channel_field_out_of_its_domain_is_refused(site: Path, tmp_path: Path, field: str, value: Any,
                                                       words: str) -> None:
    evil = _crafted(site, tmp_path / "evil", lambda b: b.__setitem__(field, value))
    with pytest.raises(BundleError, match=words):
        follow(evil, name="penguins", alias="prod", state_dir=tmp_path / "state", every=600)


@pytest.fixture
def redirecting() -> Iterator[str]:
    """A loopback server answering every request with a redirect off the allowed schemes."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1:1/channel.json")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/site"
    server.shutdown()
    server.server_close()


def test_a_redirect_off_https_is_not_followed(redirecting: str, tmp_path: Path) -> None:
    # urllib's default handler follows https to plain http on any host, or to ftp: before, this tried ftp
    with pytest.raises(BundleError, match="redirected to ftp://127.0.0.1:1/channel.json, which is not https"):
        follow(redirecting, name="penguins", alias="prod", state_dir=tmp_path / "state", every=600)


def _bundle_dir(site: Path) -> Path:
    (digest,) = [d for d in (site / "penguins" / "bundles").iterdir()]
    return digest


def test_a_file_missing_from_an_export_directory_is_a_bundle_error_not_an_os_error(site: Path,
                                                                                    tmp_path: Path) -> None:
    # before: FileNotFoundError out of follow(); now Unreachable (tried again on the next poll)
    evil = shutil.copytree(site, tmp_path / "evil")
    (_bundle_dir(evil) / "card.md").unlink()
    with pytest.raises(BundleError, match=r"card\.md: cannot be read \(No such file or directory\)"):
        follow(evil, name="penguins", alias="prod", state_dir=tmp_path / "state", every=600)


def test_a_file_far_larger_than_the_channel_says_is_not_read_whole(site: Path, tmp_path: Path) -> None:
    # a share's writer is not trusted (the signature is): a symlink to /dev/zero, or this sparse 600 MB file,
    # was read whole into memory before its size was compared with the channel's
    import resource

    evil = shutil.copytree(site, tmp_path / "evil")
    card = _bundle_dir(evil) / "card.md"
    size = card.stat().st_size
    with open(card, "r+b") as fh:
        fh.truncate(600 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(BundleError, match=f"is {size + 1} bytes, the channel says {size}"):
        follow(evil, name="penguins", alias="prod", state_dir=tmp_path / "state", every=600)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300 << 10


@pytest.fixture
def dribbling(site: Path) -> Iterator[str]:
    """A loopback server of the export whose card.md arrives one byte every 20 ms (a stalled, not a slow, link)."""
    import time

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

        def do_GET(self) -> None:
            path = site / self.path.split("/site/", 1)[1]
            data = path.read_bytes() if path.is_file() else b""
            self.send_response(200 if path.is_file() else 404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                if path.name != "card.md":
                    self.wfile.write(data)
                    return
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.02)
            except OSError:  # the client gave up: what the test wants
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/site"
    server.shutdown()
    server.server_close()


def test_a_download_that_dribbles_gives_up_at_its_deadline(dribbling: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # the socket timeout is per read: before the deadline this held follow() for len(card.md) × 20 ms (~50 s)
    import time

    from skedge.runtime import _channel

    monkeypatch.setattr(_channel, "_TIMEOUT", 0.5)  # the deadline: 0.5 s + size / 64 KB/s
    t0 = time.monotonic()
    with pytest.raises(BundleError, match=r"card\.md: slower than 64 KB/s"):
        follow(dribbling, name="penguins", alias="prod", state_dir=tmp_path / "state", every=600)
    assert time.monotonic() - t0 < 10
