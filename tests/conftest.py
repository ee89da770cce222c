"""Shared fixtures: bundles trained once per session from the bundled example configs."""

from __future__ import annotations

from pathlib import Path

import pytest

# the runtime-only venv (session): tests/runtime/test_wheel.py and tests/e2e/test_package.py share one
from tests.runtime_venv import runtime_env  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _train(config: str, models_dir: Path) -> Path:
    from skedge.trainer import train

    return train(EXAMPLES / config, models_dir).path


@pytest.fixture(scope="session")
def penguins_bundle(models_dir: Path) -> Path:
    """models/penguins/1.0.0 trained from examples/penguins.toml (classification)."""
    return _train("penguins.toml", models_dir)


@pytest.fixture(scope="session")
def body_mass_bundle(models_dir: Path) -> Path:
    return _train("penguins_body_mass.toml", models_dir)


@pytest.fixture(scope="session")
def anomaly_bundle(models_dir: Path) -> Path:
    return _train("penguins_anomaly.toml", models_dir)
