"""The server process itself: the API key, SIGTERM, a registry alias, refusals at start, the import boundary."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from skedge.runtime import load

from .conftest import start


def _rows(bundle: Path, n: int) -> list[dict[str, object]]:
    rows = json.loads((bundle / "golden.json").read_text())["rows"][:n]
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


def test_api_key_is_enforced_on_every_route_but_health(penguins_bundle: Path, tmp_path: Path) -> None:
    # a signed bundle served with --trust: the answers carry its signed release number
    from skedge.runtime.signing import generate_keypair, release_from_version, sign_bundle

    private, public = generate_keypair(tmp_path / "keys")
    bundle = tmp_path / "signed"
    shutil.copytree(penguins_bundle, bundle)
    sign_bundle(bundle, private, release=release_from_version("1.0.0") + 7)
    s = start(bundle, tmp_path / "log", "--api-key-env", "SKEDGE_TEST_KEY", "--trust", str(public),
              env={"SKEDGE_TEST_KEY": "s3cret-key", "SKEDGE_STATE_DIR": str(tmp_path / "state")})
    try:
        rows = _rows(penguins_bundle, 3)
        assert httpx.get(f"{s.url}/health").status_code == 200
        for method, path in (("POST", "/predict"), ("GET", "/model"), ("GET", "/metrics"), ("GET", "/openapi.json"),
                             ("GET", "/docs"), ("GET", "/nope")):
            for headers in ({}, {"X-API-Key": "s3cret-kez"}, {"Authorization": "Bearer s3cret"},
                            {"X-API-Key": ""}):
                r = httpx.request(method, f"{s.url}{path}", json=rows, headers=headers)
                assert r.status_code == 401, (path, headers, r.status_code)
                assert r.json()["reason"] == "auth" and r.headers["www-authenticate"] == "Bearer"
        want = load(penguins_bundle).predict(rows).tolist()
        for headers in ({"X-API-Key": "s3cret-key"}, {"Authorization": "Bearer s3cret-key"}):
            r = httpx.post(f"{s.url}/predict", json=rows, headers=headers)
            assert r.status_code == 200 and r.json()["predictions"] == want
            assert r.json()["model"]["release"] == release_from_version("1.0.0") + 7
        doc = httpx.get(f"{s.url}/openapi.json", headers={"X-API-Key": "s3cret-key"}).json()
        assert doc["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header",
                                                                  "name": "X-API-Key"}
        metrics = httpx.get(f"{s.url}/metrics", headers={"X-API-Key": "s3cret-key"}).text
        assert 'skedge_rejects_total{reason="auth"} 24.0' in metrics
    finally:
        s.stop()


def test_regression_answers_then_sigterm_finishes_in_flight_requests_and_exits_0(body_mass_bundle: Path,
                                                                                   tmp_path: Path) -> None:
    import threading

    s = start(body_mass_bundle, tmp_path / "log")
    rows = _rows(body_mass_bundle, 200)
    got = httpx.post(f"{s.url}/predict", json=rows).json()  # a regressor: values, no probabilities
    assert "probabilities" not in got
    assert np.array_equal(np.asarray(got["predictions"]), load(body_mass_bundle).predict(rows))
    doc = httpx.get(f"{s.url}/openapi.json").json()
    pred = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert pred["properties"]["predictions"]["items"] == {"type": "number"}

    answers: list[int] = []

    def keep_asking() -> None:
        with httpx.Client(base_url=s.url) as c:
            try:
                for _ in range(400):
                    answers.append(c.post("/predict", json=rows).status_code)
            except httpx.HTTPError:
                pass  # the server stopped taking new requests: expected after SIGTERM

    t = threading.Thread(target=keep_asking)
    t.start()
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    code = s.proc.wait(timeout=30)
    t.join(timeout=30)
    log = s.log.read_text()
    assert code == 0, log[-2000:]
    assert "Finished server process" in log and "Traceback" not in log
    assert answers and set(answers) == {200}  # every request it took, it answered


def test_refusals_at_start_are_one_line(penguins_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from skedge.cli import main

    monkeypatch.delenv("SKEDGE_NO_SUCH_KEY", raising=False)
    assert main(["serve", str(penguins_bundle), "--api-key-env", "SKEDGE_NO_SUCH_KEY"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --api-key-env SKEDGE_NO_SUCH_KEY: the environment variable is not set or empty: export it with the "
        "key clients must send"]
    assert main(["serve", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing" in err[0]
    assert main(["serve", str(penguins_bundle), "--workers", "0"]) == 1
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_the_runtime_does_not_import_the_server() -> None:
    code = "import sys, skedge.runtime; print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', " \
           "'prometheus_client', 'skedge.serve') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_two_workers_sum_their_metrics(penguins_bundle: Path, tmp_path: Path) -> None:
    s = start(penguins_bundle, tmp_path / "log", "--workers", "2")
    try:
        rows = _rows(penguins_bundle, 5)
        want = load(penguins_bundle).predict(rows).tolist()
        for _ in range(30):  # new connections: the kernel spreads them over both workers
            assert httpx.post(f"{s.url}/predict", json=rows).json()["predictions"] == want
        text = httpx.get(f"{s.url}/metrics").text
        assert "skedge_rows_scored_total 150.0" in text  # both workers' rows, summed
        pids = {line.split('pid="')[1].split('"')[0] for line in text.splitlines()
                if line.startswith("skedge_model_info{")}
        assert len(pids) == 2
    finally:
        assert s.stop() == 0


def test_registry_alias_is_followed_live(penguins_bundle: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from skedge.registry import init_registry, promote, publish

    monkeypatch.setenv("SKEDGE_STATE_DIR", str(tmp_path / "state-here"))

    from ..registry.conftest import as_version

    reg = tmp_path / "reg"
    init_registry(reg)
    publish(penguins_bundle, reg)
    promote(reg, "penguins", "1.0.0", "prod", force=True, reason="first")
    s = start(Path("penguins@prod"), tmp_path / "log", "--registry", str(reg), "--every", "0.3",
              env={"SKEDGE_STATE_DIR": str(tmp_path / "state")})
    try:
        rows = _rows(penguins_bundle, 20)
        want = load(penguins_bundle).predict(rows).tolist()
        r = httpx.post(f"{s.url}/predict", json={"rows": rows}).json()
        assert r["predictions"] == want and r["model"]["version"] == "1.0.0"
        publish(as_version(penguins_bundle, tmp_path / "v110", "1.1.0"), reg)
        promote(reg, "penguins", "1.1.0", "prod", force=True, reason="second")
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = httpx.post(f"{s.url}/predict", json={"rows": rows}).json()
            assert r["predictions"] == want  # the same model under another version: the same answers
            seen.append(r["model"]["version"])
            if seen[-1] == "1.1.0":
                break
            time.sleep(0.1)
        assert seen[-1] == "1.1.0", seen[-5:]
        assert httpx.get(f"{s.url}/model").json()["version"] == "1.1.0"
    finally:
        assert s.stop() == 0
    from skedge.runtime import LiveModel, Model
    from skedge.serve import ServeConfig, load_model

    pinned = load_model(ServeConfig("penguins@1.0.0", registry=str(reg)))  # a version: loaded once, not followed
    assert type(pinned) is Model and pinned.version == "1.0.0"
    live = load_model(ServeConfig("penguins@prod", registry=str(reg), every=5))
    try:
        assert isinstance(live, LiveModel) and live.version == "1.1.0"
    finally:
        live.close()
