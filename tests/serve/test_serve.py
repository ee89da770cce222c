"""``skedge serve`` as a client sees it: a real server process on 127.0.0.1, answers against the runtime's."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from skedge.runtime import SchemaError, load

from .conftest import Server


def _rows(bundle: Path, n: int) -> list[dict[str, Any]]:
    return _json_rows(json.loads((bundle / "golden.json").read_text())["rows"][:n])


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # golden.json holds NaN for a missing number; JSON clients send null
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


@pytest.fixture(scope="module")
def model(penguins_bundle: Path) -> Any:
    return load(penguins_bundle)


@pytest.fixture(scope="module")
def golden_rows(penguins_bundle: Path) -> list[dict[str, Any]]:
    return _json_rows(json.loads((penguins_bundle / "golden.json").read_text())["rows"])


def test_golden_rows_through_predict_equal_the_runtime(server: Server, model: Any,
                                                       golden_rows: list[dict[str, Any]]) -> None:
    want_labels = model.predict(golden_rows).tolist()
    want_proba = model.predict_proba(golden_rows)
    for body in ({"rows": golden_rows}, golden_rows):  # both request shapes
        r = httpx.post(f"{server.url}/predict", json=body, timeout=30)
        assert r.status_code == 200, r.text
        got = r.json()
        assert len(got["predictions"]) == len(golden_rows) > 100
        assert got["predictions"] == want_labels
        # JSON carries a double's shortest repr: the server's probabilities are the runtime's, bit for bit
        assert np.array_equal(np.asarray(got["probabilities"]), want_proba)
        assert got["model"] == {"name": "penguins", "version": "1.0.0", "release": None}
    # one row takes the one-row path on the server: the same answer as in the batch
    for i in (0, 7, len(golden_rows) - 1):
        one = httpx.post(f"{server.url}/predict", json=[golden_rows[i]]).json()
        assert one["predictions"] == [want_labels[i]]
        assert np.array_equal(np.asarray(one["probabilities"][0]), want_proba[i])


def _schema_message(model: Any, rows: Any) -> str:
    with pytest.raises(SchemaError) as info:
        model.predict(rows)
    return " ".join(str(info.value).split())


def test_bad_rows_get_422_with_the_runtime_message(server: Server, model: Any,
                                                   golden_rows: list[dict[str, Any]]) -> None:
    good = golden_rows[0]
    cases = {
        "number as text": [good, {**good, "bill_length_mm": "39.1"}],
        "missing field": [{k: v for k, v in good.items() if k != "sex"}],
        "unknown field": [{**good, "wings": 2}],
        "row not a record": [good, 5],
        "a list as a value": [{**good, "island": [["Biscoe"]]}],
        "past float32": [{**good, "body_mass_g": 1e300}],
        "boolean as a number": [{**good, "bill_depth_mm": True}],
    }
    for what, rows in cases.items():
        r = httpx.post(f"{server.url}/predict", json=rows)
        assert r.status_code == 422, (what, r.text)
        body = r.json()
        assert body["detail"] == _schema_message(model, rows), what
        assert body["reason"] == "schema"
    r = httpx.post(f"{server.url}/predict", json=[good, {**good, "bill_length_mm": "39.1"}]).json()
    assert (r["row"], r["field"]) == (1, "bill_length_mm")
    assert r["detail"].startswith("row 1, field 'bill_length_mm': expected a finite number, got '39.1' (str)")


@pytest.mark.parametrize(("body", "reason", "says"), [
    (b"\xff\xfe[{}]", "encoding", "not UTF-8 (byte 0"),
    (b"[{\"island\": ", "json", "not JSON"),
    (b"[{\"bill_length_mm\": NaN}]", "json", "NaN is not JSON (send null"),
    (b"[" * 200_000 + b"]" * 200_000, "json", "nested too deeply"),
    (b"[" + b"9" * 5000 + b"]", "json", "not JSON"),
    (b"{\"a\": 1}", "shape", 'expected {"rows": [record, ...]} or a list of records'),
    (b"\"rows\"", "shape", "got str"),
    (b"null", "shape", "got NoneType"),
    (b"{\"rows\": 3}", "shape", '"rows" must be a list of records, got int'),
    (b"[1e999]", "schema", "row 0: expected a dict"),
    # json keeps the last of a repeated key: the row was scored with "Dream", silently
    (b"[{\"island\": \"Biscoe\", \"island\": \"Dream\"}]", "json", "names the field 'island' twice"),
])
def test_bad_bodies_get_422_and_say_why(server: Server, body: bytes, reason: str, says: str) -> None:
    r = httpx.post(f"{server.url}/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["reason"] == reason
    assert says in r.json()["detail"]


def test_infinity_and_huge_numbers_are_refused_as_the_runtime_refuses(server: Server, model: Any,
                                                                     golden_rows: list[dict[str, Any]]) -> None:
    body = json.dumps({**golden_rows[0], "body_mass_g": 12345.5}).replace("12345.5", "1e999")  # -> infinity
    r = httpx.post(f"{server.url}/predict", content=f"[{body}]".encode())
    assert r.status_code == 422
    assert r.json()["detail"] == _schema_message(model, [{**golden_rows[0], "body_mass_g": float("inf")}])


def test_body_limit_413_declared_and_streamed(server: Server, golden_rows: list[dict[str, Any]]) -> None:
    big = json.dumps(golden_rows * 5).encode()
    assert len(big) > 1_000_000
    r = httpx.post(f"{server.url}/predict", content=big)
    assert r.status_code == 413
    assert "1000000 bytes" in r.json()["detail"] and r.json()["reason"] == "too_large"

    def chunks() -> Any:  # no Content-Length: Transfer-Encoding chunked, counted while read
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    r = httpx.post(f"{server.url}/predict", content=chunks())
    assert r.status_code == 413
    assert r.json()["reason"] == "too_large" and "limit of 1000000 bytes" in r.json()["detail"]
    # under the limit, streamed: scored
    small = json.dumps(golden_rows[:50]).encode()
    r = httpx.post(f"{server.url}/predict", content=iter([small[:100], small[100:]]))
    assert r.status_code == 200 and len(r.json()["predictions"]) == 50


def test_unknown_route_404_wrong_method_405(server: Server) -> None:
    r = httpx.get(f"{server.url}/nope")
    assert r.status_code == 404 and "no route GET /nope" in r.json()["detail"]
    r = httpx.get(f"{server.url}/predict")
    assert r.status_code == 405


def test_fuzzed_bodies_never_get_a_500(server: Server, golden_rows: list[dict[str, Any]]) -> None:
    rng = np.random.default_rng(16)
    good = json.dumps(golden_rows[:3]).encode()
    values: list[Any] = [None, True, -0.0, 1e308, -1e308, 2**70, -(2**63), "", "\ud800", "\x00", "Biscoe" * 999,
                         [], {}, [[]], {"rows": []}, 1.5, "NaN", "Infinity"]
    bodies: list[bytes] = []
    for _ in range(120):
        b = bytearray(good)
        for _ in range(int(rng.integers(1, 6))):  # byte flips, cuts and insertions into valid JSON
            i = int(rng.integers(0, len(b)))
            op = rng.integers(0, 3)
            if op == 0:
                b[i] = int(rng.integers(0, 256))
            elif op == 1:
                del b[i:i + int(rng.integers(1, 40))]
            else:
                b[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 8))).astype(np.uint8))
        bodies.append(bytes(b))
    names = list(golden_rows[0])
    for v in values:  # every field, every hostile value
        for name in names:
            bodies.append(json.dumps([{**golden_rows[0], name: v}]).encode("utf-8", "surrogatepass"))
    bodies += [json.dumps({"rows": v}).encode("utf-8", "surrogatepass") for v in values]
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for body in bodies:
            r = client.post("/predict", content=body)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code in (200, 422), (body[:200], r.status_code, r.text[:300])
            if r.status_code == 422:
                assert r.json()["detail"] and "\n" not in r.json()["detail"]
    assert statuses.get(422, 0) > 100  # most of them are refused, and said why
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'status="500"' not in metrics and "server_error" not in metrics


def test_64_concurrent_clients_get_the_serial_answers(server: Server, model: Any,
                                                      golden_rows: list[dict[str, Any]]) -> None:
    batches = [golden_rows[i % 200: i % 200 + 1 + i % 5] for i in range(128)]  # 1 to 5 rows each
    want = [(model.predict(b).tolist(), model.predict_proba(b)) for b in batches]

    async def run() -> list[Any]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
            gate = asyncio.Semaphore(64)

            async def one(b: list[dict[str, Any]]) -> Any:
                async with gate:
                    r = await client.post("/predict", json=b)
                    assert r.status_code == 200, r.text
                    return r.json()

            return list(await asyncio.gather(*(one(b) for b in batches)))

    got = asyncio.run(run())
    for g, (labels, proba) in zip(got, want, strict=True):
        assert g["predictions"] == labels
        assert np.array_equal(np.asarray(g["probabilities"]), proba)


def test_openapi_names_every_feature_with_type_and_enum(server: Server, model: Any) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    row = doc["components"]["schemas"]["Row"]
    assert list(row["properties"]) == model.schema.names == row["required"]
    assert row["additionalProperties"] is False
    types = {"number": "number", "integer": "integer", "category": "string", "boolean": "boolean"}
    for f in model.schema.features:
        prop = row["properties"][f.name]
        assert prop["type"] == ([types[f.kind], "null"] if f.nullable else types[f.kind])
        if f.categories is not None:
            assert prop["enum"] == [*f.categories, *([None] if f.nullable else [])]
    assert row["properties"]["island"]["enum"][:3] == ["Biscoe", "Dream", "Torgersen"]
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/Row"} in [body["oneOf"][1]["items"],
                                                     body["oneOf"][0]["properties"]["rows"]["items"]]
    pred = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert pred["properties"]["predictions"]["items"]["enum"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert set(doc["paths"]) >= {"/predict", "/health", "/model", "/metrics"}
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_health_model_and_metrics(server: Server, model: Any, penguins_bundle: Path) -> None:
    h = httpx.get(f"{server.url}/health").json()
    assert h["ready"] is True and h["verified"] is True and h["model"]["version"] == "1.0.0"
    m = httpx.get(f"{server.url}/model").json()
    manifest = json.loads((penguins_bundle / "manifest.json").read_text())
    assert m["schema"] == model.schema.to_json() and m["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert m["metrics"] == manifest["metrics"] and m["digest"] == model.digest
    assert m["parity"]["verified_at_start"]["passed"] is True
    assert m["parity"]["verified_at_start"]["rows"] == len(json.loads((penguins_bundle / "golden.json")
                                                                      .read_text())["rows"])

    def scrape() -> dict[str, float]:
        out = {}
        for line in httpx.get(f"{server.url}/metrics").text.splitlines():
            if line.startswith("skedge_") and not line.startswith(("skedge_requests_created", "skedge_rows_scored_c",
                                                                    "skedge_rejects_created")):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    before = scrape()
    rows = _json_rows(json.loads((penguins_bundle / "golden.json").read_text())["rows"])[:10]
    httpx.post(f"{server.url}/predict", json=rows)
    httpx.post(f"{server.url}/predict", json=[{"wings": 1}])
    httpx.get(f"{server.url}/nowhere")
    after = scrape()
    assert after["skedge_rows_scored_total"] - before.get("skedge_rows_scored_total", 0) == 10
    assert after['skedge_rejects_total{reason="schema"}'] - before.get('skedge_rejects_total{reason="schema"}', 0) == 1
    assert after['skedge_rejects_total{reason="not_found"}'] >= 1
    ok = 'skedge_requests_total{route="/predict",status="200"}'
    assert after[ok] - before.get(ok, 0) == 1
    assert after['skedge_request_seconds_count{route="/predict"}'] >= 2
    info = [k for k in after if k.startswith("skedge_model_info{") and after[k] == 1]
    assert info == [f'skedge_model_info{{digest="{model.digest}",name="penguins",release="",version="1.0.0"}}']


def test_explain_route_equals_the_runtime(server: Server, penguins_bundle: Path) -> None:
    if not (penguins_bundle / "explain.onnx").exists():
        pytest.skip("this build's exporter writes no explain.onnx")
    s = server
    rows = _rows(penguins_bundle, 30)
    want = load(penguins_bundle).explain(rows)
    r = httpx.post(f"{s.url}/explain", json={"rows": rows})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["features"] == list(want.features)
    assert np.array_equal(np.asarray(got["contributions"]), want.contributions)
    assert np.array_equal(np.asarray(got["bias"]), want.bias)
    assert np.array_equal(np.asarray(got["output"]), want.output)
    bad = httpx.post(f"{s.url}/explain", json=[{"wings": 1}])
    assert bad.status_code == 422 and bad.json()["reason"] == "schema"
    assert "/explain" in httpx.get(f"{s.url}/openapi.json").json()["paths"]
