"""The ``web`` target: a bundle's model.onnx run by onnxruntime-web (wasm) in Chromium, through the demo page.

Importing this module registers ``EXTRA_TARGETS["web"]`` for ``verify_bundle(extra=("web",))``
(``skedge verify --web``). It needs Playwright (in the ``dev`` extra) and a Chromium on disk, and says how
to get them when they are missing; nothing else in skedge needs either. Playwright only drives the browser:
``playwright install`` is not needed, the Chromium is Debian's ``chromium`` package (or ``$SKEDGE_CHROMIUM``).

The same helpers drive the browser tests (tests/e2e/test_browser.py), so what CI proves is what
``verify --web`` runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from skedge.mobile_demo import DemoServer, site_files
from skedge.runtime._errors import BundleError, SchemaError, SkedgeError

from .verify import EXTRA_TARGETS

__all__ = [
    "CHROMIUM_FLAGS",
    "CHROMIUM_ENV",
    "CHROMIUM_INSTALL_HINT",
    "chromium_executable",
    "web_unavailable",
    "chromium",
    "open_demo_page",
    "predict_in_page",
    "demo_page",
    "web_predictor",
]

CHROMIUM_ENV = "SKEDGE_CHROMIUM"
_CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
# Headless, no sandbox (containers run as root), and no traffic of its own: the only requests are the page's.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CHROMIUM_INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu: `apt-get install chromium`) or set SKEDGE_CHROMIUM to a Chromium or "
    "Chrome executable; `playwright install` is not needed"
)
# Phone-sized, as the page is meant to be seen (an iPhone 12-15 viewport in CSS pixels).
PHONE_VIEWPORT = {"width": 390, "height": 844}


def chromium_executable() -> str | None:
    """``$SKEDGE_CHROMIUM``, else Debian's ``/usr/bin/chromium`` or a ``chromium`` on PATH; None if none."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if Path(env).is_file() else None
    for name in _CHROMIUM_CANDIDATES:
        found = name if Path(name).is_file() else shutil.which(name)
        if found:
            return found
    return None


def web_unavailable() -> str | None:
    """Why the web target cannot run here (what to install), or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install 'skedge[dev]' (or pip install playwright)"
    if chromium_executable() is None:
        where = os.environ.get(CHROMIUM_ENV) or "/usr/bin/chromium"
        return f"no Chromium at {where}: {CHROMIUM_INSTALL_HINT}"
    from skedge.mobile_demo import find_runtime

    try:
        find_runtime()
    except FileNotFoundError as exc:
        return str(exc)
    return None


_PLAYWRIGHT: list[Any] = []  # [instance, users]: one per process, shared by nested chromium() blocks


@contextmanager
def _playwright() -> Iterator[Any]:
    # Playwright's sync API runs one driver per thread and refuses a second while the first is open, so a
    # chromium() inside another (verify --web while a page is open, a test inside a browser fixture) reuses it.
    if _PLAYWRIGHT:
        _PLAYWRIGHT[1] += 1
        try:
            yield _PLAYWRIGHT[0]
        finally:
            _PLAYWRIGHT[1] -= 1
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        _PLAYWRIGHT[:] = [pw, 1]
        try:
            yield pw
        finally:
            _PLAYWRIGHT.clear()


@contextmanager
def chromium(*, viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A headless Chromium context with a new, empty profile (``--user-data-dir``), closed and deleted after."""
    reason = web_unavailable()
    if reason is not None:
        raise FileNotFoundError(f"the web target cannot run: {reason}")
    with ExitStack() as stack:
        profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="skedge-chromium-"))
        pw = stack.enter_context(_playwright())
        # A persistent context is Playwright's way of passing --user-data-dir: a fresh folder, so no cache,
        # service worker or cookie from an earlier run can answer for the page.
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium_executable(),
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport=viewport or PHONE_VIEWPORT,
            service_workers="allow",
        )
        stack.callback(context.close)
        yield context


def open_demo_page(context: Any, url: str, *, timeout_ms: float = 60_000) -> Any:
    """Open the demo page at ``url`` and wait until it has loaded the model and shown a first prediction."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.goto(url)
    page.wait_for_function("() => ['ready', 'error'].includes(document.documentElement.dataset.state)",
                           timeout=timeout_ms)
    if page.evaluate("() => document.documentElement.dataset.state") != "ready":
        shown = page.locator("#result-error").text_content() or ""
        raise BundleError(f"the demo page at {url} could not load the model: {shown.strip()}"
                          + ("".join(f"\n  {p}" for p in problems)))
    return page


_PREDICT_JS = """async (rows) => {
  try {
    return { outputs: await window.skedge.predict(rows) };
  } catch (err) {
    return { error: { name: err.name, message: err.message, row: err.row ?? null, field: err.field ?? null } };
  }
}"""


def predict_in_page(page: Any, rows: Any) -> dict[str, np.ndarray]:
    """``window.skedge.predict(rows)`` in ``page``, as ``Model.predict_outputs`` returns it (arrays by kind).

    A row the page refuses raises ``SchemaError`` with the page's message, row and field.
    """
    answer = page.evaluate(_PREDICT_JS, rows)
    if "error" in answer:
        err = answer["error"]
        if err["name"] == "SchemaError":
            raise SchemaError(err["message"], row=err["row"], field=err["field"])
        raise SkedgeError(f"{err['name']}: {err['message']}")
    out: dict[str, np.ndarray] = {}
    for kind, values in answer["outputs"].items():
        if kind == "label":
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            out[kind] = arr
        else:
            out[kind] = np.asarray(values, dtype=np.float64)
    return out


@contextmanager
def demo_page(bundle: str | os.PathLike[str]) -> Iterator[Any]:
    """The demo of ``bundle`` served on a free port of 127.0.0.1 and open in headless Chromium."""
    with DemoServer(site_files(bundle), port=0) as server, chromium() as context:
        yield open_demo_page(context, server.url)


def web_predictor(bundle: Path, golden: dict[str, Any]) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """``EXTRA_TARGETS["web"]``: a predict_outputs that runs the rows in Chromium, then closes it."""
    reason = web_unavailable()
    if reason is not None:  # fail before any other target runs, with what to install
        raise FileNotFoundError(f"skedge verify --web cannot run: {reason}")

    def predict_outputs(rows: list[dict[str, Any]]) -> dict[str, Any]:
        with demo_page(bundle) as page:
            return predict_in_page(page, rows)

    return predict_outputs


EXTRA_TARGETS["web"] = web_predictor
