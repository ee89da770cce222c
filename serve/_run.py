"""``serve(config)``: load and verify the model, then run uvicorn (one process, or ``workers`` processes).

One worker: the app object is handed to uvicorn directly. Several: uvicorn starts each worker as a fresh
process that imports ``worker_app`` (a factory) and reads the same ``ServeConfig`` from an environment
variable; each loads its own model (a session is not shared across processes), and the metrics of all
workers are summed through ``PROMETHEUS_MULTIPROC_DIR`` (``_metrics``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from skedge.runtime import ConfigError, ParityError

from ._app import DEFAULT_MAX_BODY, create_app

__all__ = ["ServeConfig", "serve", "load_model", "worker_app", "GRACE_SECONDS"]

_ENV = "SKEDGE_SERVE_CONFIG"
# how long requests in flight may take to finish after SIGTERM before uvicorn cancels them
GRACE_SECONDS = 10


@dataclass(frozen=True)
class ServeConfig:
    """What ``skedge serve`` was asked for (frozen: it travels to the workers as JSON)."""

    source: str
    registry: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    api_key_env: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    trust: str | None = None
    target: str = "onnx"
    access_log: bool = False
    every: float = 30.0


def load_model(config: ServeConfig) -> Any:
    """The model ``config`` names: a bundle path, or ``NAME@ALIAS`` of ``config.registry``, followed live when
    the runtime has ``follow`` (an alias moved later is served from the next request on), else loaded once;
    ``NAME@VERSION`` is loaded once. A followed alias is served from ``model.onnx`` (``follow`` has no target)."""
    from skedge import runtime
    from skedge.runtime.registry import SEMVER, parse_ref

    threads = 1  # the server's threads are the parallelism: a request's batch is not split further
    if config.registry is None:
        return runtime.load(config.source, target=config.target, trust=config.trust, threads=threads)
    name, alias = parse_ref(config.source)
    follow = getattr(runtime, "follow", None)
    if follow is not None and not SEMVER.match(alias):  # NAME@VERSION names one bundle for good: nothing to follow
        return follow(config.registry, name=name, alias=alias, trust=config.trust, every=config.every)
    return runtime.load(config.registry, name=name, alias=alias, trust=config.trust, target=config.target,
                        threads=threads)


def _api_key(config: ServeConfig) -> str | None:
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env, "")
    if not key.strip():
        raise ConfigError(f"--api-key-env {config.api_key_env}: the environment variable is not set or empty: "
                          "export it with the key clients must send")
    return key.strip()


def _check(config: ServeConfig) -> None:
    if config.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {config.workers}")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"--port must be 0-65535, got {config.port}")
    if config.max_body < 1:
        raise ConfigError(f"--max-body must be at least 1 byte, got {config.max_body}")
    if config.port:
        _bindable(config.host, config.port)


def _bindable(host: str, port: int) -> None:
    """Refuse a port taken or a host not on this machine before the model is loaded: uvicorn would print its
    log lines and exit 3 after "serving ... at" was already announced."""
    import socket

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a TIME_WAIT port is free
        try:
            s.bind(addr)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror} (another server on that port? "
                              "--port PORT, or --host an address of this machine)") from None


def build(config: ServeConfig) -> Any:
    """The app for ``config``, refused when the model's golden rows do not pass."""
    model = load_model(config)
    app = create_app(model, max_body=config.max_body, api_key=_api_key(config), on_shutdown=lambda: _close(model))
    if not app.ready:
        raise ParityError(f"{config.source}: the model does not answer its golden rows as exported: not serving "
                          "it (skedge verify shows where)")
    return app


def worker_app() -> Any:
    """uvicorn's factory in each worker process: the config from the parent, through the environment."""
    config = ServeConfig(**json.loads(os.environ[_ENV]))
    return build(config)


def serve(config: ServeConfig) -> int:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight and return 0."""
    import uvicorn

    _check(config)
    common: dict[str, Any] = {"host": config.host, "port": config.port, "access_log": config.access_log,
                              "timeout_graceful_shutdown": GRACE_SECONDS, "log_level": "info",
                              "server_header": False}
    if config.workers == 1:
        app = build(config)
        _announce(config, app)
        server = uvicorn.Server(uvicorn.Config(app, **common))
        # uvicorn re-raises the signal it shut down on once it is done; with the default action that kills
        # the process (exit -15). A no-op handler makes a SIGTERM'd server exit 0 after its graceful stop.
        previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            server.run()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        return 0 if server.started else 1
    # check the model once here, so a bad bundle is one error line, not N workers failing to start
    app = build(config)
    _announce(config, app)
    _close(app.model)
    with tempfile.TemporaryDirectory(prefix="skedge-metrics-") as mp_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = mp_dir
        os.environ[_ENV] = json.dumps(asdict(config))
        uvicorn.run("skedge.serve._run:worker_app", factory=True, workers=config.workers, **common)
    return 0


def _close(model: Any) -> None:
    """A live model's poller thread stops with the server (a plain Model has nothing to close)."""
    close = getattr(type(model), "close", None)
    if callable(close):
        close(model)


def _announce(config: ServeConfig, app: Any) -> None:
    fastapi_app = app.app
    print(f"serving {fastapi_app.title} {fastapi_app.version} at http://{config.host}:{config.port} "
          f"(docs /docs, OpenAPI /openapi.json, metrics /metrics; workers {config.workers})", file=sys.stderr)
