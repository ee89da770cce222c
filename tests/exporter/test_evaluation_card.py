"""The card and manifest of the bundled examples carry the evaluation; the parity plot shows differences.

The bundles are the session's (tests/conftest.py: trained from examples/penguins.toml and
penguins_body_mass.toml, which slice by island and sex).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skedge.exporter.parity import parity_figure

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text())


@pytest.mark.parametrize("which", ["penguins_bundle", "body_mass_bundle"])
def test_card_and_manifest_show_baselines_intervals_and_slices(which: str, request: pytest.FixtureRequest) -> None:
    bundle = request.getfixturevalue(which)
    m = _manifest(bundle)
    ev = m["evaluation"]
    card = (bundle / "card.md").read_text()
    for name, value in m["metrics"].items():
        lo, hi = ev["intervals"][name]
        assert lo <= value <= hi, name
        dummy = ev["baselines"]["dummy"]["metrics"][name]
        assert f"| {name} | {value:.4f} | [{lo:.4f}, {hi:.4f}] | {dummy:.4f} |" in card
    assert "## Slices" in card and "### island: worst slice" in card and "### sex: worst slice" in card
    holdout = m["provenance"]["data"]["holdout_rows"]
    csv = pd.read_csv(EXAMPLES / "penguins.csv")
    for column in ("island", "sex"):
        table = ev["slices"]["columns"][column]
        assert sum(s["rows"] for s in table["slices"]) == holdout
        named = {s["slice"] for s in table["slices"]} - {"(missing)"}
        assert named <= set(csv[column].dropna())
        assert table["worst"] in named | {"(missing)"}
        for s in table["slices"]:
            assert s["gated"] == (s["rows"] >= ev["slices"]["min_rows"])
    assert {"report/slices.png", "report/parity.png"} <= set(m["files"])
    if m["task"] == "classification":
        assert "report/reliability.png" in m["files"] and "roc_auc" in m["metrics"] and "brier" in m["metrics"]


def test_parity_plot_draws_the_difference_per_class_with_bound_and_threshold_rows(penguins_bundle: Path) -> None:
    golden = json.loads((penguins_bundle / "golden.json").read_text())
    classes = _manifest(penguins_bundle)["classes"]
    ref = np.asarray(golden["expected"]["probabilities"])
    shifted = ref.copy()
    shifted[:, 1] += 3e-9  # a difference no y = x plot can show
    fig = parity_figure(golden, {"onnx": {"probabilities": ref.tolist(), "label": golden["expected"]["label"]},
                                 "ort": {"probabilities": shifted.tolist(), "label": golden["expected"]["label"]}},
                        classes=classes)
    onnx_ax, ort_ax = fig.axes
    assert ort_ax.get_yscale() == "symlog"
    labels = [t.get_text() for t in ort_ax.get_legend().get_texts()]
    assert [f"P({c})" for c in classes] == labels[:3]
    assert any(t.startswith("threshold rows (") for t in labels)
    # the points: per class, holdout-like rows then threshold rows, each at its difference
    threshold = np.array([k.startswith("threshold") for k in golden["kinds"]])
    offsets = [c.get_offsets() for c in ort_ax.collections if len(c.get_offsets())]
    ys = np.concatenate([o[:, 1] for o in offsets])
    assert np.isclose(ys, 3e-9, rtol=1e-6, atol=0).sum() == len(ref)  # Chinstrap: every row at its 3e-9
    assert np.sum(ys == 0) == 2 * len(ref)
    assert sum(len(o) for o in offsets[1::2][:3]) == 3 * threshold.sum()
    # the bound: dashed at +-1e-5 on every row, and the linear band of the scale under the 3e-9
    bound = [ln for ln in ort_ax.get_lines() if ln.get_linestyle() == "--"]
    assert {float(np.max(ln.get_ydata())) for ln in bound} >= {1e-5}
    assert ort_ax.yaxis.get_transform().linthresh < 3e-9
    assert "max |difference| 3e-09" in ort_ax.get_title() and "max |difference| 0" in onnx_ax.get_title()
    import matplotlib.pyplot as plt

    plt.close(fig)
