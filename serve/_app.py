"""The FastAPI app over one loaded model: ``create_app(model, ...)``.

Why the routes read the raw body instead of declaring a pydantic model: the runtime already checks every row
against the schema and says which row and field is wrong; a second validator would cost a model per request
and answer with other words. The OpenAPI document still describes the real form (``_openapi``).

The hot path: the body is read on the event loop (bounded by ``max_body``), then decoded, parsed, scored and
serialized in one call on the app's own pool of worker threads, so neither a 10 MB body's parse nor a session
run blocks the loop. The pool is a plain ``ThreadPoolExecutor`` (2 threads per core: ``Session.run`` releases
the GIL) through ``loop.run_in_executor``: measured here 2-3x cheaper per hop than anyio's
``run_in_threadpool`` (16 concurrent calls: ~65-95 µs against ~200-280 µs on a loaded 2-core machine), which
matters when the model's own work for a row is ~15 µs. One ``Model`` serves every request: it is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from skedge import runtime
from skedge.runtime import BundleError, ConfigError, SchemaError, SkedgeError

from ._metrics import ROUTES, Metrics
from ._openapi import ERROR_SCHEMA, explain_responses, predict_responses, request_body, row_schema

# the bundle file of explanations (issue 14)
EXPLAIN_FILE = getattr(getattr(runtime, "explain", None), "EXPLAIN_FILE", "explain.onnx")

__all__ = ["create_app", "DEFAULT_MAX_BODY", "model_info"]

DEFAULT_MAX_BODY = 10 * 1024 * 1024
_log = logging.getLogger("skedge.serve")
_JSON = "application/json"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Reject(Exception):
    """A request refused: its status, the reason counted in /metrics, the one-line message."""

    def __init__(self, status: int, reason: str, detail: str, row: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail, self.row, self.field = status, reason, detail, row, field

    def body(self) -> bytes:
        return json.dumps({"detail": self.detail, "reason": self.reason, "row": self.row,
                           "field": self.field}).encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (send null for a missing value)")


def model_info(model: Any) -> dict[str, Any]:
    """name, version and release of a loaded model (release: the signed release number, None unless the
    bundle was loaded with ``trust=``: an unverified claim is not reported)."""
    release = getattr(getattr(model, "bundle", None), "release", None)
    return {"name": model.name, "version": model.version, "release": int(release) if release is not None else None}


def _rows(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and set(data) == {"rows"}:
        if isinstance(data["rows"], list):
            return data["rows"]
        raise Reject(422, "shape", f'"rows" must be a list of records, got {type(data["rows"]).__name__}')
    what = "an object without the single key \"rows\"" if isinstance(data, dict) else type(data).__name__
    raise Reject(422, "shape", f'expected {{"rows": [record, ...]}} or a list of records, got {what}')


class _Twice(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of a repeated key without a word: {"temp": 1, "temp": 2} would be scored as 2
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _Twice(k)
            seen.add(k)
    return out


def _parse(body: bytes) -> list[Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Reject(422, "encoding", f"the body is not UTF-8 (byte {exc.start}: {body[exc.start:exc.start + 1]!r})"
                     ) from None
    try:
        data = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique)
    except _Twice as exc:
        raise Reject(422, "json", f"a record names the field {exc.key[:100]!r} twice: which value is meant?",
                      field=exc.key[:100]) from None
    except RecursionError:
        raise Reject(422, "json", "the body is nested too deeply to be rows") from None
    except ValueError as exc:  # JSONDecodeError, and int's digit limit for a 5,000-digit number
        raise Reject(422, "json", f"the body is not JSON: {' '.join(str(exc).split())[:300]}") from None
    return _rows(data)


def _schema_reject(exc: SchemaError) -> Reject:
    return Reject(422, "schema", " ".join(str(exc).split()), row=exc.row, field=exc.field)


class _Scorer:
    """What runs on the worker thread: body bytes in, (status, JSON bytes, rows scored) out."""

    def __init__(self, model: Any) -> None:
        self.model = model
        live = getattr(runtime, "LiveModel", None)
        self._live = live is not None and isinstance(model, live)

    def current(self) -> Any:
        """The plain model that answers this request: a live model (``skedge.runtime.follow``) may swap
        between two calls, and a request's labels, probabilities and version must come from one model."""
        return self.model.model if self._live else self.model

    def predict(self, body: bytes) -> tuple[int, bytes, int]:
        rows = _parse(body)
        model = self.current()
        try:
            one = len(rows) == 1 and isinstance(rows[0], dict)
            out = self._one(model, rows[0]) if one else model.predict_outputs(rows)
        except SchemaError as exc:
            raise _schema_reject(exc) from None
        except BundleError:
            raise  # valid rows the model cannot run: the server's fault, a 500
        except (RecursionError, MemoryError) as exc:
            raise Reject(422, "rows", f"the rows cannot be read ({type(exc).__name__})") from None
        except Exception as exc:  # anything else a client's rows provoke is still the client's 422, not a 500
            _log.warning("rows refused by %s: %r", type(exc).__name__, exc)
            raise Reject(422, "rows", f"the rows cannot be scored: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:300]}") from None
        kind = "value" if "value" in out else "label"
        answer: dict[str, Any] = {"predictions": out[kind].tolist()}
        if "probabilities" in out and model.schema.task == "classification":
            answer["probabilities"] = out["probabilities"].tolist()
        if "score" in out:
            answer["scores"] = out["score"].tolist()
        answer["model"] = model_info(model)
        return 200, _dumps(answer), len(rows)

    @staticmethod
    def _one(model: Any, row: dict[str, Any]) -> dict[str, Any]:
        """One record through the runtime's one-row fast path (a dict in: no batch of one is built), which
        measured 6× cheaper than a list of one row; the runtime answers a row alone as it does in a batch."""
        task = model.schema.task
        outputs = model.schema.outputs
        out: dict[str, Any] = {"value" if task == "regression" else "label": np.asarray([model.predict(row)])}
        if task == "classification" and "probabilities" in outputs:
            out["probabilities"] = np.asarray([model.predict_proba(row)])
        if "score" in outputs:
            out["score"] = np.asarray([model.decision_function(row)])
        return out

    def explain(self, body: bytes) -> tuple[int, bytes, int]:
        rows = _parse(body)
        model = self.current()
        try:
            ex = model.explain(rows)
        except SchemaError as exc:
            raise _schema_reject(exc) from None
        except BundleError as exc:
            bundle = getattr(model, "bundle", None)
            if bundle is not None and not bundle.has(EXPLAIN_FILE):  # a family the exporter does not explain
                raise Reject(501, "not_explained", " ".join(str(exc).split())) from None
            raise
        answer = {"features": list(ex.features), "contributions": _plain(ex.contributions),
                  "bias": _plain(ex.bias), "output": _plain(ex.output), "model": model_info(model)}
        return 200, _dumps(answer), len(rows)


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _dumps(answer: dict[str, Any]) -> bytes:
    try:
        return json.dumps(answer, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:
        # a NaN or infinity out of the model is not JSON and not the client's doing
        raise BundleError("the model answered a value that is not finite; it cannot be sent as JSON") from None


class _Gate:
    """Pure ASGI around the app (no BaseHTTPMiddleware: it costs a task per request): the API key, the
    latency and status of every request."""

    def __init__(self, app: Any, metrics: Metrics, key: bytes | None, ready: bool,
                 parity: dict[str, Any] | None, model: Any) -> None:
        self.app, self.metrics, self.key, self.model = app, metrics, key, model
        self.ready, self.parity = ready, parity  # what /health says: the golden rows passed at start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in ROUTES else "other"
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.key is not None and path != "/health" and not self._authorized(scope):
                await _send(send_status, Reject(401, "auth", "this server needs an API key: send the header "
                                                             "X-API-Key: KEY or Authorization: Bearer KEY"),
                            [(b"www-authenticate", b"Bearer")])
                self.metrics.rejects.labels("auth").inc()
                return
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(route, status, time.perf_counter() - t0)

    def _authorized(self, scope: Scope) -> bool:
        assert self.key is not None
        given = b""
        for k, v in scope["headers"]:
            if k == b"x-api-key":
                given = v
            elif k == b"authorization" and v[:7].lower() == b"bearer ":
                given = v[7:]
        # compare_digest: the time taken does not tell how much of a guess was right
        return hmac.compare_digest(given.strip(), self.key)


async def _send(send: Send, r: Reject, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = r.body()
    await send({"type": "http.response.start", "status": r.status,
                "headers": [(b"content-type", _JSON.encode()), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def create_app(model: Any, *, max_body: int = DEFAULT_MAX_BODY, api_key: str | None = None,
               verify: bool = True, on_shutdown: Callable[[], Any] | None = None) -> Any:
    """The ASGI app serving ``model`` (a loaded ``skedge.runtime.Model``, or anything with its API, such as
    a live model following a registry alias).

    ``max_body``: the largest request body in bytes (413 above it). ``api_key``: when given, every route but
    ``/health`` needs it (``X-API-Key`` or ``Authorization: Bearer``). ``verify``: run the bundle's golden rows
    once now; ``/health`` is ready only when they pass (the returned app's ``ready`` and ``parity``).
    ``on_shutdown``: called when the server stops (after the requests in flight), e.g. to close a live model.
    The FastAPI app itself is the returned app's ``app``.
    """
    if max_body < 1:
        raise ConfigError(f"max_body must be at least 1 byte, got {max_body}")
    if api_key is not None and not api_key:
        raise ConfigError("the API key is empty: set it to a secret, or serve without one")
    metrics = Metrics()
    scorer = _Scorer(model)
    parity: dict[str, Any] | None = None
    if verify and getattr(model, "bundle", None) is not None:
        parity = model.verify().to_json()
    ready = parity is None or bool(parity["passed"])
    info = model_info(model)
    metrics.set_model(info["name"], info["version"], info["release"], model.digest)
    schema = model.schema
    example = _example(model)
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1), thread_name_prefix="skedge-serve")

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        pool.shutdown(wait=True)  # uvicorn has let the requests in flight finish: nothing is queued any more
        if on_shutdown is not None:
            on_shutdown()
        Metrics.worker_exit()  # with --workers: this worker's live gauges leave the sums

    app = FastAPI(lifespan=lifespan, title=f"{info['name']} model", version=str(info["version"] or "0"),
                  description=f"skedge serving {info['name']} {info['version'] or ''} ({schema.task}): "
                              f"features {', '.join(schema.names)}.")

    def reject(r: Reject) -> Response:
        metrics.rejects.labels(r.reason).inc()
        return Response(r.body(), status_code=r.status, media_type=_JSON)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            raise Reject(413, "too_large", f"the body is {declared} bytes, more than this server's limit "
                                           f"of {max_body} bytes (--max-body): send fewer rows per request")
        if declared is not None:
            return await request.body()
        chunks, total = [], 0
        async for chunk in request.stream():  # chunked: counted as it comes, refused at the first byte too many
            total += len(chunk)
            if total > max_body:
                raise Reject(413, "too_large", f"the body is more than this server's limit of {max_body} bytes "
                                               "(--max-body): send fewer rows per request")
            chunks.append(chunk)
        return b"".join(chunks)

    async def run(request: Request, work: Callable[[bytes], tuple[int, bytes, int]]) -> Response:
        try:
            body = await read_body(request)
            status, payload, n = await asyncio.get_running_loop().run_in_executor(pool, work, body)
        except Reject as r:
            return reject(r)
        except ClientDisconnect:
            return Response(status_code=400)  # no one is left to read it
        metrics.rows.inc(n)
        return Response(payload, status_code=status, media_type=_JSON)

    @app.post("/predict", openapi_extra={"requestBody": request_body(schema, example),
                                         "responses": predict_responses(schema)},
              summary="predict rows", description="One prediction per record, in order.")
    async def predict(request: Request) -> Response:
        return await run(request, scorer.predict)

    if callable(getattr(model, "explain", None)):
        @app.post("/explain", openapi_extra={"requestBody": request_body(schema, example),
                                             "responses": explain_responses(schema)},
                  summary="explain rows", description="Per row, each feature's contribution to the output.")
        async def explain(request: Request) -> Response:
            return await run(request, scorer.explain)

    @app.get("/health", summary="liveness and readiness")
    async def health() -> Response:
        body = {"status": "ok" if ready else "not ready", "live": True, "ready": ready,
                "verified": None if parity is None else parity["passed"], "model": model_info(scorer.current())}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/model", summary="schema, classes, metrics and parity of the model served")
    async def describe() -> Response:
        m = scorer.current()
        manifest = dict(getattr(getattr(m, "bundle", None), "manifest", None) or {})
        return JSONResponse({**model_info(m), "digest": m.digest, "task": m.schema.task,
                             "classes": list(m.schema.classes) if m.schema.classes is not None else None,
                             "schema": m.schema.to_json(), "metrics": manifest.get("metrics"),
                             "parity": {"verified_at_start": parity, "at_export": manifest.get("parity")}})

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
    async def prometheus() -> Response:
        m = scorer.current()  # a live model may have moved to another version since start
        now = model_info(m)
        metrics.set_model(now["name"], now["version"], now["release"], m.digest)
        data, ctype = metrics.render()
        return Response(data, media_type=ctype)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return reject(Reject(404, "not_found", f"no route {request.method} {request.url.path[:200]}: the routes "
                                                   f"are {', '.join(r for r in ROUTES if r != '/redoc')}"))
        return reject(Reject(exc.status_code, "method" if exc.status_code == 405 else "http",
                             f"{request.method} {request.url.path[:200]}: {exc.detail}"))

    async def server_error(request: Request, exc: Exception) -> Response:
        metrics.rejects.labels("server_error").inc()
        detail = " ".join(str(exc).split())[:500] if isinstance(exc, SkedgeError) else type(exc).__name__
        return Response(json.dumps({"detail": f"the server failed: {detail}", "reason": "server_error"}).encode(),
                        status_code=500, media_type=_JSON)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, server_error)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            comps = doc.setdefault("components", {}).setdefault("schemas", {})
            comps["Row"] = row_schema(schema, example)
            comps["Error"] = ERROR_SCHEMA
            if api_key is not None:
                doc["components"]["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header",
                                                                   "name": "X-API-Key"}}
                doc["security"] = [{"ApiKey": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return _Gate(app, metrics, api_key.encode() if api_key is not None else None, ready, parity, model)


def _example(model: Any) -> dict[str, Any] | None:
    """A row for /docs' form: the first golden row (golden rows are made to ship with the model)."""
    bundle = getattr(model, "bundle", None)
    if bundle is None:
        return None
    try:
        rows = bundle.golden().get("rows")
    except (SkedgeError, OSError, AttributeError):
        return None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        return None
    row = rows[0]
    ok = all(v is None or isinstance(v, int | float | str) for v in row.values())
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()} if ok else None
