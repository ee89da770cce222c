"""Real ``skedge serve`` processes on free ports of 127.0.0.1, started once per module."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start(bundle: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "skedge.cli", "serve", str(bundle), "--port", str(port),
                                 *args], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"skedge serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Server(proc, url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"skedge serve did not become ready: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(penguins_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The penguins classifier, no key, a 1 MB body limit (the golden rows fit in it)."""
    s = start(penguins_bundle, tmp_path_factory.mktemp("serve") / "server.log", "--max-body", "1000000")
    yield s
    s.stop()
