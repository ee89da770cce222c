"""Prerequisites of the browser and Node tests: on a developer's machine a missing one skips the test and
says what to install; in CI (CI=true) it fails, so a green CI run always means the browser really ran."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DEMO = ROOT / "mobile_demo"


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{reason}\n(CI is set: this test must run here, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ at the repository root (gitignored): screenshots and parity numbers of the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def web_runtime() -> Any:
    """onnxruntime-web installed for the page (``npm ci`` in mobile_demo/, which ``make setup`` runs)."""
    from skedge.mobile_demo import find_runtime

    try:
        return find_runtime()
    except FileNotFoundError as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def web_ready(web_runtime: Any) -> None:
    """Playwright, Chromium and onnxruntime-web all present."""
    from skedge.exporter.web import web_unavailable

    reason = web_unavailable()
    if reason is not None:
        unavailable(f"the browser tests need Chromium: {reason}")


@pytest.fixture(scope="module")
def browser(web_ready: None) -> Iterator[Any]:
    """One headless Chromium (fresh profile) per test module."""
    from skedge.exporter.web import chromium

    with chromium() as context:
        yield context


@pytest.fixture(scope="session")
def node() -> str:
    """Node.js with onnxruntime-node installed in mobile_demo/ (its devDependency)."""
    exe = shutil.which("node")
    if exe is None:
        unavailable("Node.js is not installed: apt-get install nodejs npm (or any Node.js 18+)")
    if not (DEMO / "node_modules" / "onnxruntime-node" / "package.json").is_file():
        unavailable(f"onnxruntime-node is not installed: cd {DEMO} && ONNXRUNTIME_NODE_INSTALL=skip npm ci "
                    "(make setup does this)")
    return exe
