"""Fixtures for the runtime tests: loaded models and the sklearn pipelines they must answer like."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skedge.runtime import Model, load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


class Reference:
    """The sklearn pipeline behind a bundle, asked the way the runtime is asked (JSON-like rows)."""

    def __init__(self, pipeline: Any, model: Model) -> None:
        self.pipeline = pipeline
        self.schema = model.schema

    def frame(self, rows: list[dict[str, Any]]) -> Any:
        from skedge.exporter._schema import frame_for_sklearn

        from .test_fuzz import spelled

        # a number given for a category field is that number's text (issue 10.3); sklearn was fitted on text
        cats = [f.name for f in self.schema.features if f.kind == "category"]
        rows = [{**r, **{n: spelled(r[n]) for n in cats if n in r}} for r in rows]
        return frame_for_sklearn(rows, self.schema)

    def _call(self, method: str, rows: list[dict[str, Any]]) -> np.ndarray:
        with warnings.catch_warnings():
            # OneHotEncoder(handle_unknown="ignore") warns on every unseen category: expected here
            warnings.filterwarnings("ignore", message=".*unknown categories.*", category=UserWarning)
            out: np.ndarray = getattr(self.pipeline, method)(self.frame(rows))
        return out

    def predict(self, rows: list[dict[str, Any]]) -> np.ndarray:
        return self._call("predict", rows)

    def predict_proba(self, rows: list[dict[str, Any]]) -> np.ndarray:
        return self._call("predict_proba", rows)


def _fit_reference(config: Path, bundle: Path) -> Any:
    """Refit the pipeline the trainer fitted for ``bundle`` (same config, same seed) and prove it is the same:
    it must reproduce the sklearn outputs stored in the bundle's golden.json exactly."""
    from skedge.trainer import fit, load_config

    pipeline, _ = fit(load_config(config))
    golden = json.loads((bundle / "golden.json").read_text())
    model = load(bundle)
    ref = Reference(pipeline, model)
    expected = golden["expected"]
    if "probabilities" in expected:
        np.testing.assert_array_equal(ref.predict_proba(golden["rows"]), np.asarray(expected["probabilities"]))
    assert [str(x) for x in ref.predict(golden["rows"])] == [str(x) for x in expected["label"]]
    return pipeline


@pytest.fixture(scope="session")
def penguins_model(penguins_bundle: Path) -> Model:
    return load(penguins_bundle)


@pytest.fixture(scope="session")
def penguins_reference(penguins_bundle: Path, penguins_model: Model) -> Reference:
    return Reference(_fit_reference(EXAMPLES / "penguins.toml", penguins_bundle), penguins_model)


@pytest.fixture(scope="session")
def penguins_golden(penguins_bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((penguins_bundle / "golden.json").read_text())
    return data


@pytest.fixture(scope="session")
def strict_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The penguins classifier's config with ``unknown_categories = "error"``: sklearn raises on an unseen
    category, so the runtime must refuse it too."""
    src = (EXAMPLES / "penguins.toml").read_text()
    src = src.replace('name = "penguins"', 'name = "penguins-strict"')
    src = src.replace('path = "penguins.csv"', f'path = "{(EXAMPLES / "penguins.csv").as_posix()}"')
    src = src.replace("[features]\n", '[features]\nunknown_categories = "error"\n')
    src = src.replace('targets = ["onnx", "ort", "coreml"]', 'targets = ["onnx"]')
    assert 'unknown_categories = "error"' in src and "penguins-strict" in src
    config = tmp_path_factory.mktemp("strict") / "penguins_strict.toml"
    config.write_text(src)
    return config


@pytest.fixture(scope="session")
def strict_bundle(strict_config: Path, models_dir: Path) -> Path:
    from skedge.trainer import train

    return train(strict_config, models_dir).path


@pytest.fixture(scope="session")
def strict_reference(strict_config: Path, strict_bundle: Path) -> Reference:
    return Reference(_fit_reference(strict_config, strict_bundle), load(strict_bundle))
