"""skedge.mobile_demo: a bundle's model predicting in the browser, offline (onnxruntime-web, wasm).

The page itself is static package data in this folder (index.html, app.js, skedge.js, skedge-core.js, sw.js,
style.css, manifest.webmanifest, icons). onnxruntime-web comes from npm (``npm ci`` here, or
``$SKEDGE_ONNXRUNTIME_WEB``) and never goes into the wheel. This module puts the three together:

    from skedge.mobile_demo import serve, write_site
    write_site("models/penguins/1.0.0", "site")      # a static site for any static host or web view
    serve("models/penguins/1.0.0", port=8765)        # http://127.0.0.1:8765/ until Ctrl-C

``skedge demo`` is the command for both. Standard library and ``skedge.runtime`` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ._server import DemoServer
from ._site import (
    MIME_TYPES,
    PAGE_FILES,
    RUNTIME_ENV,
    RUNTIME_FILES,
    Runtime,
    find_runtime,
    page_dir,
    site_files,
    write_site,
)

__all__ = [
    "serve",
    "write_site",
    "site_files",
    "find_runtime",
    "page_dir",
    "DemoServer",
    "Runtime",
    "PAGE_FILES",
    "RUNTIME_FILES",
    "RUNTIME_ENV",
    "MIME_TYPES",
]


def serve(bundle: str | os.PathLike[str], *, port: int = 8765, host: str = "127.0.0.1",
          on_ready: Callable[[str], None] | None = None, quiet: bool = True) -> None:
    """Serve the demo of ``bundle`` in the foreground until Ctrl-C; ``on_ready(url)`` once it listens."""
    DemoServer(site_files(bundle), host=host, port=port, quiet=quiet).serve_forever(on_ready)
