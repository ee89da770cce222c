"""The runtime-only virtual environment, built once per test session and shared (tests/conftest.py imports the
fixture): skedge's own wheel installed without extras into a fresh venv, and an env whose interpreters cannot
open a network connection. tests/runtime/test_wheel.py checks what it holds; tests/e2e/test_package.py installs a
model's wheel into it (and removes it again).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Loaded first in every interpreter of the venv (PYTHONPATH): any attempt to open a network connection
# or resolve a name raises. Unix sockets stay allowed; onnxruntime and numpy use none.
NO_NETWORK = '''
import socket

class NetworkCall(RuntimeError):
    pass

_real = socket.socket

class _GuardedSocket(_real):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if family in (socket.AF_INET, socket.AF_INET6, -1) and fileno is None:
            raise NetworkCall(f"network call attempted: socket({family}, {type})")
        super().__init__(family, type, proto, fileno)

def _refuse(*args, **kwargs):
    raise NetworkCall(f"network call attempted: {args[:2]}")

socket.socket = _GuardedSocket
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
'''


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: int = 300,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False)


@pytest.fixture(scope="session")
def runtime_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh venv with only the built wheel installed, and an env that disables sockets there."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    # build from a copy: a wheel build writes build/ and *.egg-info next to the sources
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", "models",
        "test-artifacts", ".mypy_cache", ".ruff_cache", ".pytest_cache", "bench"))
    dist = work / "dist"
    out = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)])
    assert out.returncode == 0, out.stderr
    (wheel,) = dist.glob("skedge-*.whl")
    venv = work / "venv"
    out = run([sys.executable, "-m", "venv", str(venv)])
    assert out.returncode == 0, out.stderr
    python = venv / "bin" / "python"
    out = run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], timeout=600)
    assert out.returncode == 0, out.stderr
    guard = work / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(guard)
    return {"python": str(python), "env": env, "wheel": wheel, "work": work}
