"""A model whose graph grows large per row states how many rows one run may take, and the runtime keeps to it.

kNN graphs hold a [rows, training rows, features] difference: 8,192 rows against 1,500 × 8 training values is
1.6 GB in one run, and the runtime runs two at once. The exporter writes ``skedge.rows_per_run`` from what the
graph holds per row; the runtime splits every batch into runs of at most that many rows. Measured, not assumed:
a fresh process's peak memory with the bound and without it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

import skedge.runtime._model as runtime_model
from skedge.exporter import export
from skedge.exporter.onnx import RUN_BYTES
from skedge.runtime import BundleError, load

TRAIN, WIDTH = 1500, 8


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, WIDTH)), columns=[f"x{j}" for j in range(WIDTH)])


@pytest.fixture(scope="module", params=["regressor-distance", "classifier-uniform"])
def knn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _data(TRAIN, 0)
    if request.param == "regressor-distance":
        pipe = make_pipeline(StandardScaler(), KNeighborsRegressor(5, weights="distance"))
        y: Any = X["x0"] * 2 + X["x1"] ** 2
    else:
        pipe = make_pipeline(StandardScaler(), KNeighborsClassifier(7))
        y = np.where(X["x0"] + X["x2"] > 0, "yes", "no")
    pipe.fit(X, y)
    path = export(pipe, X.sample(200, random_state=1), tmp_path_factory.mktemp("knn"), name="knn",
                  targets=("onnx",))
    return pipe, path


def _rows_per_run(path: Path) -> int:
    meta = {p.key: p.value for p in onnx.load(str(path / "model.onnx")).metadata_props}
    return int(meta["skedge.rows_per_run"])


def test_the_bound_is_what_the_graph_holds_per_row(knn: tuple[Any, Path]) -> None:
    _, path = knn
    assert _rows_per_run(path) == RUN_BYTES // (4 * 8 * TRAIN * WIDTH) == 699
    assert load(path)._chunk_rows == 699


def test_batches_run_in_bounded_runs_and_answer_as_one(knn: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, path = knn
    test = _data(3000, 1)
    model = load(path)
    runs: list[int] = []
    inner = model._run_raw

    def spy(names: Any, feeds: dict[str, np.ndarray], options: Any) -> Any:
        runs.append(len(next(iter(feeds.values()))))
        return inner(names, feeds, options)

    monkeypatch.setattr(model, "_run_raw", spy)
    got = model.predict(test)
    assert sum(runs) == 3000 and max(runs) <= 699 and len(runs) >= 5
    whole = load(path, threads=1)
    monkeypatch.setattr(whole, "_chunk_rows", 10**9)
    one_run = whole.predict(test)
    assert np.array_equal(got, one_run)  # chunking is invisible, bit for bit
    want = pipe.predict(test)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    else:
        assert (got == want).all()


def _peak_mib(path: Path, bounded: bool) -> float:
    code = textwrap.dedent(f"""
        import numpy as np, pandas as pd
        from skedge.runtime import load
        model = load({str(path)!r}, threads=1)
        if not {bounded}:
            model._chunk_rows = 8192  # what every model got before the bound
        x = pd.DataFrame(np.random.default_rng(2).normal(size=(8192, {WIDTH})),
                         columns=[f"x{{j}}" for j in range({WIDTH})])
        model.predict(x)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest) across exec
        hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
        print(int(hwm.split()[1]) / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def test_peak_memory_of_a_batch_is_bounded(knn: tuple[Any, Path]) -> None:
    from sklearn.base import is_regressor

    pipe, path = knn
    if not is_regressor(pipe):
        pytest.skip("one kNN graph is enough to measure memory (both record their size the same way)")
    bounded, unbounded = _peak_mib(path, True), _peak_mib(path, False)
    # one unbounded run holds 8,192 × 1,500 × 8 doubles twice over (1.6 GB); a bounded one 699 rows of it
    assert bounded < 600 < 1200 < unbounded, (bounded, unbounded)


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1e9", "١٢", "9" * 40, ""])
def test_a_bad_bound_is_refused(knn: tuple[Any, Path], tmp_path: Path, value: str) -> None:
    _, path = knn
    model = onnx.load(str(path / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props} | {"skedge.rows_per_run": value}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    f = tmp_path / "bad.onnx"
    f.write_bytes(model.SerializeToString())
    with pytest.raises(BundleError, match="rows_per_run' metadata is .* not a positive whole number"):
        load(f)


def test_a_large_bound_never_passes_the_runtimes_own(knn: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = knn
    model = onnx.load(str(path / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props} | {"skedge.rows_per_run": "999999999"}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    f = tmp_path / "large.onnx"
    f.write_bytes(model.SerializeToString())
    assert load(f)._chunk_rows == runtime_model.CHUNK_ROWS
