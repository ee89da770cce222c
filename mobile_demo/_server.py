"""A small HTTP server for the demo site: 127.0.0.1 only, the right MIME types, nothing but the site's files.

It answers only to a ``Host`` header naming 127.0.0.1, localhost or the host it was started with (any port
given must be its own): a page on another site can point its own name at 127.0.0.1 (DNS rebinding) and
read what a local server answers, here the model and its golden rows. Any other ``Host`` gets 421.
"""

from __future__ import annotations

import errno
import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import TracebackType
from urllib.parse import unquote, urlsplit

from ._site import MIME_TYPES, Content

__all__ = ["DemoServer", "LOCAL_NAMES"]

LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def _split_host(value: str) -> tuple[str, str | None]:
    """``Host`` header -> (name lower-cased, without a trailing dot; port or None); "[::1]:8765" keeps brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[:end + 1], value[end + 1:]
    else:
        name, sep, port = value.partition(":")
        rest = sep + port
    return name.rstrip("."), rest[1:] if rest.startswith(":") else None


def _handler(files: Mapping[str, Content], quiet: bool, names: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "skedge-demo"
        sys_version = ""

        def _host_ok(self) -> bool:
            host = self.headers.get("Host")
            if not host:
                return False
            name, port = _split_host(host)
            own_port = str(getattr(self.server, "server_port", ""))  # HTTPServer's bound port
            return name in names and (port is None or port == own_port)

        def _lookup(self) -> tuple[str, Content] | None:
            path = unquote(urlsplit(self.path).path).lstrip("/")
            if path == "" or path.endswith("/"):
                path += "index.html"
            # only the site's own paths answer: no directory listing, nothing outside the mapping
            return (path, files[path]) if path in files else None

        def _send(self, head_only: bool) -> None:
            if not self._host_ok():
                # 421 Misdirected Request: this server is not the one that name belongs to
                self.send_error(421, "this demo server answers only to 127.0.0.1 and localhost")
                return
            found = self._lookup()
            if found is None:
                self.send_error(404, "not part of the demo site")
                return
            path, content = found
            ctype = MIME_TYPES.get(PurePosixPath(path).suffix, "application/octet-stream")
            size = len(content) if isinstance(content, bytes) else Path(content).stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(size))
            # always revalidate: the service worker, not the HTTP cache, is what keeps the page offline
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if head_only:
                return
            if isinstance(content, bytes):
                self.wfile.write(content)
            else:
                with open(content, "rb") as fh:
                    shutil.copyfileobj(fh, self.wfile)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            try:
                self._send(head_only=False)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser cancelled the request

        def do_HEAD(self) -> None:  # noqa: N802
            self._send(head_only=True)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            if not quiet:
                sys.stderr.write(f"  {self.address_string()} {format % args}\n")

    return Handler


class DemoServer:
    """Serve a site mapping (``site_files``) on ``host:port``; port 0 picks a free one.

    Use ``serve_forever()`` in the foreground (the CLI), or as a context manager, which serves from a thread.
    """

    def __init__(self, files: Mapping[str, Content], *, host: str = "127.0.0.1", port: int = 8765,
                 quiet: bool = True) -> None:
        names = LOCAL_NAMES | {_split_host(f"[{host}]" if ":" in host else host)[0]}
        try:
            self._httpd = ThreadingHTTPServer((host, port), _handler(files, quiet, names))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(exc.errno, f"port {port} on {host} is in use: choose another with --port N "
                                         "(0 picks a free one)") from None
            raise
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve until Ctrl-C (KeyboardInterrupt), then close the socket and return."""
        if on_ready is not None:
            on_ready(self.url)
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()

    def start(self) -> DemoServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="skedge-demo", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket: afterwards the site is gone, as when a phone loses the network."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
