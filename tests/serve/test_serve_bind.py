"""`skedge serve` on a port it cannot have: one error line and exit 1, before the model is loaded (the hostile
trial found uvicorn's log lines and exit 3, after "serving ... at" had been announced)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")


def test_a_port_taken_is_one_error_line(penguins_bundle: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cp = subprocess.run([sys.executable, "-m", "skedge.cli", "serve", str(penguins_bundle), "--port", str(port)],
                            capture_output=True, text=True, timeout=60)
    assert cp.returncode == 1, cp.stderr
    assert cp.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another "
                                      "server on that port? --port PORT, or --host an address of this machine)"]
    assert cp.stdout == ""
