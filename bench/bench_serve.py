"""``skedge serve`` under load, side by side with the template way, in one run (issue 16).

Two servers on 127.0.0.1, one uvicorn process each, the same uvicorn, httptools and uvloop, access logs off
in both, and the same pipeline (penguins: 100-tree forest behind a ColumnTransformer, trained here):

* skedge: ``skedge serve BUNDLE`` (the runtime's onnxruntime session, the raw body checked by the runtime);
* template: the routes as the template project writes them: FastAPI with a pydantic model of a record,
  ``POST /predict`` taking a list of them, a pandas DataFrame built from the list, the sklearn pipeline's
  ``predict`` and ``predict_proba`` (loaded with joblib), the answer with the model version.

The load generator is a small asyncio HTTP/1.1 client on raw sockets (keep-alive, one connection per client,
each client sends its next request when the answer to the last has been read: fixed concurrency, closed
loop). For 1, 16 and 64 clients and 1 and 100 rows per request it counts requests per second, the latency
p50 and p99 seen by the client (send to last byte read) and errors (anything but a 200, or a dropped
connection). Both servers' answers are checked against the runtime before anything is timed.
The client runs on the same two cores as the server: its cost is in every figure, for both servers alike.

    python bench/bench_serve.py            # ~1.5 minutes: writes docs/bench.md's serve section
    python bench/bench_serve.py --quick    # a smoke run: 1 s per point, nothing written
"""


import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from docsection import write_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bench.md"
START, END = "<!-- bench_serve:start -->", "<!-- bench_serve:end -->"
CLIENTS = (1, 16, 64)
ROWS = (1, 100)
# the targets
RPS_VS_TEMPLATE = 5.0  # at 16 clients
ONE_ROW_P99_MS = 10.0


# -- the template server (run as its own process by --template) -------------------------------
def template_app(pipeline_path: str, schema_path: str) -> Any:
    """The template project's service, with its record model written out from the schema's fields."""
    import joblib
    import pandas as pd
    from fastapi import FastAPI
    from pydantic import BaseModel, create_model

    schema = json.loads(Path(schema_path).read_text())
    types = {"number": float, "integer": int, "boolean": bool, "category": str}
    fields: dict[str, Any] = {f["name"]: (types[f["kind"]] | None, None) for f in schema["features"]}
    Record = create_model("Record", **fields)  # what the template writes as `class Penguin(BaseModel): ...`
    model = joblib.load(pipeline_path)
    app = FastAPI(title="model API")

    class Prediction(BaseModel):
        predictions: list[Any]
        probabilities: list[list[float]]
        model_version: str

    @app.post("/predict", response_model=Prediction)
    def predict(records: list[Record]) -> Prediction:  # type: ignore[valid-type]
        frame = pd.DataFrame([r.model_dump() for r in records])
        return Prediction(predictions=model.predict(frame).tolist(),
                          probabilities=model.predict_proba(frame).tolist(), model_version="1.0.0")

    return app


def run_template(pipeline_path: str, schema_path: str, port: int) -> int:
    import uvicorn

    uvicorn.run(template_app(pipeline_path, schema_path), host="127.0.0.1", port=port, access_log=False,
                log_level="warning")
    return 0


# -- the load generator ---------------------------------------------------------------------
@dataclass
class Point:
    server: str
    clients: int
    rows: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))] * 1000 if s else float("nan")


def _request(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> tuple[int, bytes]:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def _client(port: int, req: bytes, until: float, point: Point, record: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                status, _ = await _exchange(reader, writer, req)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                point.errors += record
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if record:
                if status == 200:
                    point.latencies.append(time.perf_counter() - t0)
                else:
                    point.errors += 1
    finally:
        writer.close()


async def _load(port: int, req: bytes, clients: int, seconds: float, warmup: float, point: Point) -> None:
    t = time.perf_counter()
    await asyncio.gather(*(_client(port, req, t + warmup, point, False) for _ in range(clients)))
    t = time.perf_counter()
    await asyncio.gather(*(_client(port, req, t + seconds, point, True) for _ in range(clients)))
    point.seconds = time.perf_counter() - t


async def _answer(port: int, body: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        status, data = await _exchange(reader, writer, _request("/predict", body))
    finally:
        writer.close()
    if status != 200:
        raise SystemExit(f"port {port} answered {status}: {data[:300]!r}")
    return dict(json.loads(data))


# -- the run --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start on port {port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def prepare(work: Path) -> tuple[Path, Path, Path, list[dict[str, Any]]]:
    """The penguins bundle, its pipeline as the template loads it, its schema, and real rows."""
    import warnings

    import joblib
    import pandas as pd

    from skedge.trainer import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(ROOT / "examples" / "penguins.toml", work / "models")
    pipeline = work / "model.joblib"
    joblib.dump(result.pipeline, pipeline)
    manifest = json.loads((result.path / "manifest.json").read_text())
    schema = work / "schema.json"
    schema.write_text(json.dumps(manifest["schema"]))
    names = [f["name"] for f in manifest["schema"]["features"]]
    data = pd.read_csv(ROOT / "examples" / "penguins.csv")[names].dropna().reset_index(drop=True)
    rows = json.loads(data.to_json(orient="records"))
    return result.path, pipeline, schema, rows


def check_answers(bundle: Path, ports: dict[str, int], rows: list[dict[str, Any]]) -> None:
    """Both servers must give the runtime's labels (and probabilities within 1e-5) before they are timed."""
    import numpy as np

    from skedge.runtime import load

    model = load(bundle)
    want_labels, want_proba = list(model.predict(rows)), model.predict_proba(rows)
    for name, port in ports.items():
        got = asyncio.run(_answer(port, json.dumps(rows).encode()))
        if got["predictions"] != want_labels or not np.allclose(got["probabilities"], want_proba, atol=1e-5):
            raise SystemExit(f"{name} does not answer like the runtime: not timing it")


def measure(ports: dict[str, int], rows: list[dict[str, Any]], seconds: float, warmup: float) -> list[Point]:
    try:
        import uvloop

        uvloop.install()  # the client's own cost per request, kept small for both servers alike
    except ImportError:
        pass
    points = []
    for n in ROWS:
        req = _request("/predict", json.dumps(rows[:n] if n <= len(rows) else (rows * n)[:n]).encode())
        for c in CLIENTS:
            for name, port in ports.items():  # interleaved: a drift of the machine hits both
                p = Point(name, c, n)
                asyncio.run(_load(port, req, c, seconds, warmup, p))
                print(f"  {name:8s} {n:3d} rows {c:2d} clients: {p.rps:7.0f} req/s  p50 {p.pct(.5):6.2f} ms  "
                      f"p99 {p.pct(.99):6.2f} ms  errors {p.errors}", flush=True)
                points.append(p)
    return points


def table(points: list[Point]) -> tuple[str, list[str]]:
    by = {(p.server, p.clients, p.rows): p for p in points}
    lines = ["| rows/request | clients | skedge req/s | template req/s | ratio | skedge p50 / p99 ms | "
             "template p50 / p99 ms | errors (skedge/template) |", "|---:|---:|---:|---:|---:|---|---|---|"]
    for n in ROWS:
        for c in CLIENTS:
            s, t = by[("skedge", c, n)], by[("template", c, n)]
            lines.append(f"| {n} | {c} | {s.rps:,.0f} | {t.rps:,.0f} | {s.rps / t.rps:.1f}× | "
                         f"{s.pct(.5):.2f} / {s.pct(.99):.2f} | {t.pct(.5):.2f} / {t.pct(.99):.2f} | "
                         f"{s.errors}/{t.errors} |")
    verdicts = []
    for n in ROWS:
        s, t = by[("skedge", 16, n)], by[("template", 16, n)]
        ratio = s.rps / t.rps
        verdicts.append(f"{n} row{'s' if n > 1 else ''} a request, 16 clients: {ratio:.1f}× the template's req/s "
                        f"({'meets' if ratio >= RPS_VS_TEMPLATE else 'misses'} the {RPS_VS_TEMPLATE:.0f}× target)")
    for c in CLIENTS:
        s = by[("skedge", c, 1)]
        verdicts.append(f"one row, {c} client{'s' if c > 1 else ''}: skedge p99 {s.pct(.99):.2f} ms "
                        f"({'under' if s.pct(.99) < ONE_ROW_P99_MS else 'over'} the {ONE_ROW_P99_MS:.0f} ms target)")
    return "\n".join(lines), verdicts


def environment() -> str:
    import fastapi
    import onnxruntime
    import sklearn
    import uvicorn

    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores shared by both servers' "
            f"process, the load generator and whatever else ran (load average {load} at the end), Python "
            f"{platform.python_version()}, FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__} "
            f"(httptools, uvloop), onnxruntime {onnxruntime.__version__}, scikit-learn {sklearn.__version__}")


def write_doc(text: str) -> None:
    write_section(DOC, START, END, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 s per point, nothing written")
    p.add_argument("--no-write", action="store_true", help="do not update docs/bench.md")
    p.add_argument("--seconds", type=float, default=3.0, help="measured seconds per point (default 3)")
    p.add_argument("--template", nargs=3, metavar=("PIPELINE", "SCHEMA", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.template:
        return run_template(args.template[0], args.template[1], int(args.template[2]))
    seconds, warmup = (1.0, 0.3) if args.quick else (args.seconds, 0.5)
    with tempfile.TemporaryDirectory(prefix="skedge-bench-serve-") as tmp:
        work = Path(tmp)
        print("training the penguins model ...", flush=True)
        bundle, pipeline, schema, rows = prepare(work)
        ports = {"skedge": _free_port(), "template": _free_port()}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        procs = {
            "skedge": subprocess.Popen([sys.executable, "-m", "skedge.cli", "serve", str(bundle), "--port",
                                        str(ports["skedge"])], **quiet),  # type: ignore[call-overload]
            "template": subprocess.Popen([sys.executable, __file__, "--template", str(pipeline), str(schema),
                                          str(ports["template"])], **quiet),  # type: ignore[call-overload]
        }
        try:
            for name, proc in procs.items():
                _wait(ports[name], proc, name)
            check_answers(bundle, ports, rows)
            print(f"load: {seconds:.0f} s per point after {warmup} s of warm-up", flush=True)
            points = measure(ports, rows, seconds, warmup)
        finally:
            for proc in procs.values():
                _stop(proc)
    text, verdicts = table(points)
    print(text)
    for v in verdicts:
        print(" ", v)
    if not (args.quick or args.no_write):
        body = (f"## Serving over HTTP (bench/bench_serve.py)\n\n{environment()}.\n\n"
                f"Closed loop, {seconds:.0f} s per point after {warmup} s of warm-up; latency as the client sees "
                "it. skedge: `skedge serve` (1 worker); template: FastAPI + pydantic records + pandas DataFrame + "
                "the sklearn pipeline's predict and predict_proba (1 worker), same pipeline.\n\n"
                f"{text}\n\n" + "\n".join(f"- {v}" for v in verdicts) + "\n")
        write_doc(body)
        print(f"wrote the serve section of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
