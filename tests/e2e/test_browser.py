"""The demo page in a real browser (headless Chromium, onnxruntime-web wasm) against sklearn's answers.

Every comparison is with golden.json's reference outputs, which scikit-learn produced at export; the Python
runtime appears only where the question is "do both refuse the same input the same way".
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skedge.runtime import SchemaError, load
from skedge.runtime._parity import ParityRow, compare_outputs

pytestmark = pytest.mark.browser

SETTLED_JS = """(before) => {
  const d = document.documentElement.dataset;
  return Number(d.requested || 0) > before && d.requested === d.predictions;
}"""


def _golden(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "golden.json").read_text(encoding="utf-8"))


def _row_of(golden: dict[str, Any], kind: str) -> tuple[dict[str, Any], int]:
    # golden rows from data are "mixed" by default now (fields drawn from different holdout rows, issue 10.5)
    kinds = [kind, "mixed"] if kind == "holdout" else [kind]
    i = next(i for i, k in enumerate(golden["kinds"]) if k in kinds)
    return golden["rows"][i], i


def _write_parity(artifacts: Path, name: str, row: ParityRow) -> None:
    (artifacts / f"parity-{name}.json").write_text(json.dumps(row.to_json(), indent=2) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def penguins_page(browser: Any, penguins_bundle: Path) -> Iterator[Any]:
    from skedge.exporter.web import open_demo_page
    from skedge.mobile_demo import DemoServer, site_files

    with DemoServer(site_files(penguins_bundle), port=0) as server:
        page = open_demo_page(browser, server.url)
        yield page
        page.close()


@pytest.mark.parametrize("bundle_fixture", ["penguins_bundle", "body_mass_bundle", "anomaly_bundle"])
def test_golden_vectors_in_the_browser_answer_like_sklearn(
        bundle_fixture: str, request: pytest.FixtureRequest, browser: Any, artifacts: Path) -> None:
    from skedge.exporter.web import open_demo_page, predict_in_page
    from skedge.mobile_demo import DemoServer, site_files

    bundle: Path = request.getfixturevalue(bundle_fixture)
    golden = _golden(bundle)
    with DemoServer(site_files(bundle), port=0) as server:
        page = open_demo_page(browser, server.url)
        got = predict_in_page(page, golden["rows"])
        shown_id = "#result-value" if golden["task"] == "regression" else "#result-label"
        assert page.locator(shown_id).is_visible()
        page.close()
    row = compare_outputs("web", got, golden["expected"], golden.get("tolerance"))
    _write_parity(artifacts, f"web-{bundle.parent.name}", row)
    assert row.rows == len(golden["rows"])
    assert row.passed, row
    if "label" in golden["expected"]:
        assert row.label_agreement == 1.0
    assert row.max_abs_diff <= 1e-5 or row.max_rel_diff <= 1e-5, row


def test_missing_values_are_normalised_as_in_python(penguins_page: Any, penguins_bundle: Path) -> None:
    from skedge.exporter.web import predict_in_page

    golden = _golden(penguins_bundle)
    row, i = _row_of(golden, "edge:all-missing")
    ref = {k: [v[i]] for k, v in golden["expected"].items()}
    # The same missing row spelled three ways: None; NaN wherever it is None (categories too; "" is a string,
    # not a missing value); and one row alone (not in a list), which like the Python runtime answers with
    # arrays of one.
    blank = {name: math.nan if v is None else v for name, v in row.items()}
    for spelled in ([row], [blank], row):
        got = predict_in_page(penguins_page, spelled)
        assert compare_outputs("web", got, ref, golden.get("tolerance")).passed, (spelled, got, ref)


@pytest.mark.parametrize(("field", "value"), [
    ("year", 2008.5),             # an integer feature given a fraction
    ("bill_length_mm", "39.1"),   # a number given as text
    ("bill_length_mm", math.inf),
    ("island", [3]),              # a category given a list (a number is a category's text: 3 is "3")
    ("island", True),
])
def test_bad_values_are_refused_as_in_python(penguins_page: Any, penguins_bundle: Path, field: str,
                                             value: Any) -> None:
    from skedge.exporter.web import predict_in_page

    good, _ = _row_of(_golden(penguins_bundle), "holdout")
    rows = [dict(good), {**good, field: value}]
    with pytest.raises(SchemaError) as py:
        load(penguins_bundle).predict_outputs(rows)
    with pytest.raises(SchemaError) as web:
        predict_in_page(penguins_page, rows)
    assert (web.value.row, web.value.field) == (py.value.row, py.value.field) == (1, field)
    # Same words up to the value's type name, which is Python's in one and JavaScript's in the other.
    assert str(web.value).split(" got ")[0] == str(py.value).split(" got ")[0]


@pytest.mark.parametrize("change", ["missing field", "unknown field"])
def test_rows_with_wrong_fields_are_refused_as_in_python(penguins_page: Any, penguins_bundle: Path,
                                                         change: str) -> None:
    from skedge.exporter.web import predict_in_page

    good, _ = _row_of(_golden(penguins_bundle), "holdout")
    bad = dict(good)
    if change == "missing field":
        del bad["sex"]
    else:
        bad["colour"] = "black"
    with pytest.raises(SchemaError) as py:
        load(penguins_bundle).predict_outputs([bad])
    with pytest.raises(SchemaError) as web:
        predict_in_page(penguins_page, [bad])
    assert str(web.value) == str(py.value)


def _fill(page: Any, row: dict[str, Any]) -> None:
    """Set the form to ``row`` as a person would: choose in selects, type numbers, tick "missing"."""
    for name, value in row.items():
        field = page.locator(f'.field[data-field="{name}"]')
        if field.get_attribute("data-kind") in ("category", "boolean"):
            if value is None:  # "" may be a category of its own: the missing choice is chosen by its label
                field.locator("select").select_option(label="(missing)")
                continue
            field.locator("select").select_option(("true" if value else "false") if isinstance(value, bool) else value)
            continue
        missing = field.locator('input[type="checkbox"]')
        if value is None:
            missing.check()
        else:
            if missing.count() and missing.is_checked():
                missing.uncheck()
            field.locator('input[type="number"]').fill(str(value))


def _shown(page: Any) -> tuple[str, dict[str, float]]:
    label = (page.locator("#result-label").text_content() or "").strip()
    bars = {}
    for li in page.locator("#result-probabilities li").all():
        text = (li.locator(".pct").text_content() or "").replace(",", ".")
        bars[(li.locator(".name").text_content() or "").strip()] = float(re.sub(r"[^0-9.]", "", text)) / 100
    return label, bars


def _predict_through_form(page: Any, row: dict[str, Any]) -> tuple[str, dict[str, float]]:
    before = int(page.evaluate("() => Number(document.documentElement.dataset.requested || 0)"))
    _fill(page, row)
    page.wait_for_function(SETTLED_JS, arg=before, timeout=10_000)
    assert page.locator("#result-error").is_hidden(), page.locator("#result-error").text_content()
    return _shown(page)


def _assert_shows(shown: tuple[str, dict[str, float]], golden: dict[str, Any], i: int, classes: list[str]) -> None:
    label, bars = shown
    assert label == str(golden["expected"]["label"][i])
    ref = dict(zip(classes, golden["expected"]["probabilities"][i], strict=True))
    assert list(bars) == classes  # one bar per class, in the model's class order
    # the bars print one decimal of a percent
    assert all(abs(bars[c] - ref[c]) <= 0.0005 + 1e-9 for c in classes), (bars, ref)


def _classes(bundle: Path) -> list[str]:
    return [str(c) for c in json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))["classes"]]


def test_a_person_fills_the_form_and_reads_the_prediction(penguins_page: Any, penguins_bundle: Path,
                                                          artifacts: Path) -> None:
    page = penguins_page
    golden = _golden(penguins_bundle)
    classes = _classes(penguins_bundle)
    assert page.locator("#model-name").text_content() == "penguins"
    assert page.locator("#model-version").text_content() == "1.0.0"
    assert page.locator('#parity tr[data-target="onnx"] .pass').count() == 1
    # the form offers the schema: known categories (+ missing where nullable), the training range
    assert page.locator('.field[data-field="island"] option').all_text_contents() == \
        ["Biscoe", "Dream", "Torgersen", "(missing)"]
    assert "32.10 – 59.60" in (page.locator('.field[data-field="bill_length_mm"] .hint').text_content() or "")

    for kind in ("holdout", "edge:all-missing", "edge:far-above:flipper_length_mm"):
        row, i = _row_of(golden, kind)
        _assert_shows(_predict_through_form(page, row), golden, i, classes)
        far = page.locator('.field[data-field="flipper_length_mm"] .warn')
        assert far.is_visible() == (kind == "edge:far-above:flipper_length_mm")

    # a value the model cannot take is refused in words, on the field it concerns
    before = int(page.evaluate("() => Number(document.documentElement.dataset.requested)"))
    page.locator('.field[data-field="year"] input[type="number"]').fill("2008.5")
    page.wait_for_function(SETTLED_JS, arg=before)
    assert "field 'year': expected a whole number" in (page.locator("#result-error").text_content() or "")
    assert page.locator('.field[data-field="year"]').get_attribute("aria-invalid") == "true"

    row, i = _row_of(golden, "holdout")
    _assert_shows(_predict_through_form(page, row), golden, i, classes)
    # the page's own parity check over every golden row, as a person on a phone would press it
    page.locator("#check-parity").click()
    here = page.locator('#parity tr[data-target="this browser"]')
    here.wait_for(timeout=30_000)
    assert here.locator("td").all_text_contents()[1] == str(len(golden["rows"]))
    assert here.locator(".pass").count() == 1
    # from the top, so the pinned prediction card sits where a person first sees it
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "mobile_demo.png"), full_page=True)


def test_a_tampered_model_is_refused_by_the_page(browser: Any, penguins_bundle: Path, web_runtime: Any,
                                                 tmp_path: Path) -> None:
    from skedge.mobile_demo import write_site

    site = write_site(penguins_bundle, tmp_path / "site")
    model = site / "model" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0x01
    model.write_bytes(bytes(data))
    with _static_host(site) as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("() => document.documentElement.dataset.state === 'error'", timeout=30_000)
        assert "does not match its manifest" in (page.locator("#result-error").text_content() or "")
        page.close()


class _StaticHandler(SimpleHTTPRequestHandler):
    """A plain static host, as a user might put the --out folder on: only the MIME types configured."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".mjs": "text/javascript", ".js": "text/javascript",
                      ".webmanifest": "application/manifest+json"}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Host:
    """The site folder on a plain static host, from a thread; ``stop`` takes it off the network."""

    def __init__(self, site: Path) -> None:
        handler = functools.partial(_StaticHandler, directory=str(site))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join()
        self.httpd.server_close()


@contextmanager
def _static_host(site: Path) -> Iterator[str]:
    host = _Host(site)
    try:
        yield host.url
    finally:
        host.stop()


def test_offline_the_page_still_loads_and_predicts(penguins_bundle: Path, web_ready: None, tmp_path: Path,
                                                   artifacts: Path) -> None:
    from skedge.exporter.web import chromium, open_demo_page, predict_in_page
    from skedge.mobile_demo import write_site

    golden = _golden(penguins_bundle)
    site = write_site(penguins_bundle, tmp_path / "site")  # the --out site on a plain static host
    host = _Host(site)
    try:
        with chromium() as context:
            page = open_demo_page(context, host.url)
            page.wait_for_function("() => document.documentElement.dataset.offline === 'ready'", timeout=30_000)
            page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)

            # The network goes: the host stops (connection refused) and the browser is offline. Playwright's
            # offline switch alone does not reach service workers, the stopped host does.
            host.stop()
            context.set_offline(True)
            gone = page.evaluate("() => fetch('site.json', {cache: 'no-store'}).then(() => 'reached', () => 'gone')")
            assert gone == "gone"

            page.reload()
            page.wait_for_function("() => document.documentElement.dataset.state === 'ready'", timeout=30_000)
            got = predict_in_page(page, golden["rows"])
            row = compare_outputs("web-offline", got, golden["expected"], golden.get("tolerance"))
            _write_parity(artifacts, "web-offline", row)
            assert row.passed and row.label_agreement == 1.0, row

            person, i = _row_of(golden, "edge:missing:body_mass_g")
            _assert_shows(_predict_through_form(page, person), golden, i, _classes(penguins_bundle))
            page.evaluate("() => window.scrollTo(0, 0)")
            page.screenshot(path=str(artifacts / "mobile_demo_offline.png"), full_page=True)
    finally:
        host.stop()


def test_verify_web_runs_the_bundle_in_chromium(penguins_bundle: Path, web_ready: None, tmp_path: Path,
                                                artifacts: Path) -> None:
    import skedge.exporter.web  # noqa: F401  (registers the target, as `skedge verify --web` does)
    from skedge.exporter.verify import verify_bundle

    rows = verify_bundle(penguins_bundle, extra=("web",), report_dir=tmp_path)
    by = {r.target: r for r in rows}
    assert {"onnx", "ort", "web"} <= set(by)
    for target in ("onnx", "ort", "web"):
        _write_parity(artifacts, f"verify-{target}", by[target])
        assert by[target].passed and by[target].label_agreement == 1.0, by[target]
        assert by[target].rows == len(_golden(penguins_bundle)["rows"])
    assert "| web |" in (tmp_path / "parity.md").read_text(encoding="utf-8")
    assert np.isfinite(by["web"].max_abs_diff)


@pytest.fixture(scope="module")
def colors_page(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    from skedge.exporter import export
    from skedge.exporter.web import open_demo_page
    from skedge.mobile_demo import DemoServer, site_files
    from tests.runtime.test_missing import _frame, _pipeline

    X, y = _frame(600, 0)
    pipe = _pipeline().fit(X, y)
    bundle = export(pipe, X, tmp_path_factory.mktemp("colors"), name="colors", targets=["onnx"])
    with DemoServer(site_files(bundle), port=0) as server:
        page = open_demo_page(browser, server.url)
        yield pipe, page
        page.close()


def test_empty_string_and_missing_in_the_browser_answer_like_sklearn(colors_page: tuple[Any, Any]) -> None:
    """Issue 11.4 in onnxruntime-web: "" and " " are categories sklearn answers; None and NaN are missing."""
    from skedge.exporter.web import predict_in_page
    from tests.runtime.test_missing import _sk

    pipe, page = colors_page
    rows = [{"x": 0.1, "z": -0.2, "color": c} for c in ("", " ", None, math.nan, "red", "Zoë", "never", "日本語")]
    got = predict_in_page(page, rows)
    want = _sk(pipe, rows)
    assert abs(want[0][1] - want[2][1]) > 0.3  # "" and missing differ in sklearn: the comparison can fail
    np.testing.assert_allclose(np.asarray(got["probabilities"], dtype=np.float64), want, rtol=0, atol=1e-6)
    assert list(got["label"]) == list(_sk(pipe, rows, "predict"))
    empty = predict_in_page(page, [])
    assert {k: len(v) for k, v in empty.items()} == {"label": 0, "probabilities": 0}
    with pytest.raises(SchemaError, match="row 0, field 'color': got \"\uffff\", the value skedge feeds"):
        predict_in_page(page, [{"x": 0.1, "z": 0.0, "color": "\uffff"}])
