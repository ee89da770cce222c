"""The demo page draws the predicted row's contributions (explain.onnx in onnxruntime-web) as a bar chart, with
the numbers the Python runtime's ``model.explain`` gives for the same row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skedge.runtime import load

pytestmark = pytest.mark.browser


def _shown_row(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => {
      const row = {};
      for (const node of document.querySelectorAll('#inputs .field')) {
        const name = node.dataset.field;
        const input = node.querySelector('input[type=number], select');
        const missing = node.querySelector('input[type=checkbox]');
        if (missing && missing.checked) { row[name] = null; continue; }
        row[name] = node.dataset.kind === 'category' ? input.value
          : node.dataset.kind === 'boolean' ? input.value === 'true' : Number(input.value);
      }
      return row;
    }""")


def _chart(page: Any) -> dict[str, float]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#explain-bars li')]
        .map((li) => [li.dataset.feature, Number(li.dataset.value)]))""")


def test_demo_page_draws_the_contributions_of_the_predicted_row(
        browser: Any, penguins_bundle: Path, artifacts: Path) -> None:
    from skedge.exporter.web import open_demo_page
    from skedge.mobile_demo import DemoServer, site_files

    model = load(penguins_bundle)
    with DemoServer(site_files(penguins_bundle), port=0) as server:
        page = open_demo_page(browser, server.url)
        page.wait_for_function("() => document.documentElement.dataset.explained === "
                               "document.documentElement.dataset.requested", timeout=60_000)
        assert page.locator("#explain-bars").is_visible()
        first = _chart(page)
        # change an input: the chart follows the new prediction
        page.select_option("select[name=island]", "Dream")
        page.wait_for_function("() => document.documentElement.dataset.explained === "
                               "document.documentElement.dataset.requested", timeout=60_000)
        row = _shown_row(page)
        chart = _chart(page)
        label = page.locator("#result-label").get_attribute("data-value")
        page.screenshot(path=str(artifacts / "mobile_demo_explain.png"), full_page=True)
        page.close()
    assert set(chart) == set(model.schema.names) and len(chart) == len(model.schema.names)
    ex = model.explain([row])
    k = list(map(str, model.classes or ())).index(str(label))
    want = dict(zip(ex.features, ex.contributions[0, :, k], strict=True))
    for name, value in chart.items():
        assert abs(value - want[name]) <= 1e-9, (name, value, want[name])
    assert chart != first  # another island, other contributions
    # the bars add up, with the bias, to the probability the page shows for that class
    assert abs(ex.bias[k] + sum(chart.values()) - model.predict_proba(row)[k]) <= 1e-6
    assert np.argmax(ex.output[0]) == k
