"""`skedge demo`: the served page (MIME types, 127.0.0.1, Ctrl-C) and the static site (--out)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from skedge.cli import main
from skedge.mobile_demo import PAGE_FILES, RUNTIME_ENV, RUNTIME_FILES, page_dir

ROOT = Path(__file__).resolve().parents[2]


def test_demo_out_writes_a_self_contained_static_site(penguins_bundle: Path, web_runtime: Any, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    assert main(["demo", str(penguins_bundle), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = sorted([*PAGE_FILES, *(f"ort/{f}" for f in RUNTIME_FILES), "model/manifest.json",
                       "model/model.onnx", "model/golden.json", "model/explain.onnx", "site.json"])
    assert files == expected  # no node_modules, no Python, nothing else of the source folder
    for f in ("model.onnx", "manifest.json", "golden.json"):
        assert (out / "model" / f).read_bytes() == (penguins_bundle / f).read_bytes()
    for f in RUNTIME_FILES:
        assert (out / "ort" / f).read_bytes() == (web_runtime.dir / f).read_bytes()
    site = json.loads((out / "site.json").read_text(encoding="utf-8"))
    assert site["files"] == [f for f in expected if f != "site.json"]  # what the service worker caches
    assert site["model"] == {"name": "penguins", "version": "1.0.0", "url": "model/"}
    webmanifest = json.loads((out / "manifest.webmanifest").read_text(encoding="utf-8"))
    assert webmanifest["display"] == "standalone" and webmanifest["icons"]

    # writing again replaces the earlier site; a folder that is not a demo site is never overwritten
    assert main(["demo", str(penguins_bundle), "--out", str(out)]) == 0
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    assert main(["demo", str(penguins_bundle), "--out", str(foreign)]) == 1
    assert "not a skedge demo site" in capsys.readouterr().err
    assert (foreign / "todo.txt").read_text() == "keep me"


def test_demo_without_onnxruntime_web_says_how_to_get_it(penguins_bundle: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(RUNTIME_ENV, str(tmp_path / "nothing-here"))
    assert main(["demo", str(penguins_bundle), "--out", str(tmp_path / "site")]) == 1
    err = capsys.readouterr().err
    assert "onnxruntime-web is not installed" in err
    assert f"npm ci --omit=dev --prefix {page_dir()}" in err
    assert f"export {RUNTIME_ENV}=" in err
    assert not (tmp_path / "site").exists()


def test_demo_refuses_a_tampered_bundle(penguins_bundle: Path, web_runtime: Any, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "bundle"
    copy.mkdir()
    for f in penguins_bundle.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    (copy / "golden.json").write_text("{}")
    assert main(["demo", str(copy), "--out", str(tmp_path / "site")]) == 1
    assert "does not match its manifest" in capsys.readouterr().err


def _get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.headers.get("Content-Type", ""), res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), b""


def test_demo_serves_with_the_right_mime_types_and_stops_on_ctrl_c(penguins_bundle: Path, web_runtime: Any) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "skedge.cli", "demo", str(penguins_bundle), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        url = match.group(0)
        expect = {
            "": "text/html",
            "index.html": "text/html",
            "skedge.js": "text/javascript",
            "sw.js": "text/javascript",
            "ort/ort.wasm.min.mjs": "text/javascript",
            "ort/ort-wasm-simd-threaded.mjs": "text/javascript",
            "ort/ort-wasm-simd-threaded.wasm": "application/wasm",
            "manifest.webmanifest": "application/manifest+json",
            "model/manifest.json": "application/json",
            "model/model.onnx": "application/octet-stream",
            "site.json": "application/json",
        }
        for path, ctype in expect.items():
            status, got, body = _get(url + path, method="HEAD" if path.endswith(".wasm") else "GET")
            assert status == 200, path
            assert got.split(";")[0] == ctype, (path, got)
        assert _get(url + "model/model.onnx")[2] == (penguins_bundle / "model.onnx").read_bytes()
        # only the site: not the source folder, not the bundle's other files, not outside it
        for path in ("package.json", "_site.py", "node_modules/onnxruntime-web/package.json", "model/card.md",
                     "model/../../manifest.json", "%2e%2e/pyproject.toml"):
            assert _get(url + path)[0] == 404, path
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "stopped" in out
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_page_files_are_package_data_and_node_modules_is_not() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    # setuptools matches package-data globs against paths relative to the package folder
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert conf["package-dir"]["skedge.mobile_demo"] == "mobile_demo"
    assert "skedge.mobile_demo" in conf["packages"]
    globs = conf["package-data"]["skedge.mobile_demo"]
    demo = ROOT / "mobile_demo"
    shipped = {str(p.relative_to(demo)) for g in globs for p in demo.glob(g) if p.is_file()}
    assert set(PAGE_FILES) <= shipped, set(PAGE_FILES) - shipped
    assert {"package.json", "package-lock.json"} <= shipped  # so `npm ci --prefix` works on an installed copy
    assert not any(part == "node_modules" for p in shipped for part in Path(p).parts)
    assert not any(fnmatch.fnmatch(p, "*.wasm") for p in shipped)


@pytest.mark.parametrize(("host", "status"), [
    ("127.0.0.1:{port}", 200), ("localhost:{port}", 200), ("LOCALHOST", 200), ("127.0.0.1", 200),
    ("[::1]:{port}", 200), ("localhost.:{port}", 200),
    ("evil.example:{port}", 421), ("evil.example", 421), ("127.0.0.1.evil.example:{port}", 421),
    ("localhost:1", 421), ("localhost@evil.example", 421), (None, 421),
])
def test_demo_server_answers_only_to_local_host_names(host: str | None, status: int) -> None:
    """DNS rebinding: a page on evil.example resolves its name to 127.0.0.1 and reads what the server answers
    (the model, its golden rows) unless the server refuses a Host that is not its own."""
    import http.client

    from skedge.mobile_demo import DemoServer

    files = {"index.html": b"<p>demo</p>", "model/golden.json": b'{"rows": []}'}
    with DemoServer(files, port=0) as server:
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        for path in ("/", "/model/golden.json"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("GET", path, skip_host=True)
            if host is not None:
                conn.putheader("Host", host.format(port=port))
            conn.endheaders()
            res = conn.getresponse()
            body = res.read()
            conn.close()
            assert res.status == status, (host, path, res.status)
            if status == 200:
                assert body == files[path.lstrip("/") or "index.html"]
            else:
                assert b"rows" not in body and b"demo</p>" not in body


def test_demo_server_started_with_a_name_answers_to_that_name() -> None:
    import http.client

    from skedge.mobile_demo import DemoServer

    with DemoServer({"index.html": b"ok"}, host="localhost", port=0) as server:
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        got = {}
        for host in ("localhost", "127.0.0.1", "other.example"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("GET", "/", skip_host=True)
            conn.putheader("Host", f"{host}:{port}")
            conn.endheaders()
            got[host] = conn.getresponse().status
            conn.close()
    assert got == {"localhost": 200, "127.0.0.1": 200, "other.example": 421}
