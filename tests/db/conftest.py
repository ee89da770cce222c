"""The database suite runs twice: against SQLite (a file) and against a real PostgreSQL server.

The server is a throwaway cluster (tests/db/pgserver.py) started once per session from Debian's
``postgresql`` package; each test gets a database of its own. Without PostgreSQL the postgresql half
skips on a developer's machine and FAILS under CI=true, so a green CI means it really ran.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .pgserver import find_pg_bin, fresh_database, throwaway_postgres

ROOT = Path(__file__).resolve().parents[2]
_COUNTER = itertools.count()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{reason}\n(CI is set: the PostgreSQL tests must run here, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL cluster's ``postgres`` database, for the whole session."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL is not installed (apt-get install postgresql): no initdb/pg_ctl found")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed: pip install 'skedge[db]'")
    assert bin_dir is not None
    with throwaway_postgres(bin_dir) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind: a SQLite file, or a new database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'preds.db'}"
    admin: str = request.getfixturevalue("pg_admin_url")
    return fresh_database(admin, f"t{os.getpid()}_{next(_COUNTER)}")


@pytest.fixture(scope="session")
def penguins_v2_bundle(models_dir: Path) -> Path:
    """penguins 2.0.0: another model of the same fields and classes (fewer, shallower trees, another seed)."""
    from skedge.trainer import train

    text = (ROOT / "examples" / "penguins.toml").read_text()
    text = text.replace('version = "1.0.0"', 'version = "2.0.0"').replace("seed = 42", "seed = 7")
    text = text.replace("n_estimators = 100, min_samples_leaf = 1", "n_estimators = 10, min_samples_leaf = 5")
    text = text.replace('path = "penguins.csv"', f'path = "{ROOT / "examples" / "penguins.csv"}"')
    text = text.replace('targets = ["onnx", "ort", "coreml"]', 'targets = ["onnx"]')
    text = text.replace("accuracy = 0.95", "accuracy = 0.8").replace("accuracy = 0.9\n", "accuracy = 0.7\n")
    config = models_dir / "penguins_v2.toml"
    config.write_text(text)
    return train(config, models_dir).path
