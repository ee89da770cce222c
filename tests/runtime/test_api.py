"""The runtime's public surface: its names, what one row returns, and what importing it costs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import skedge.runtime as rt
from skedge.runtime import Model, load

PUBLIC = {
    "load", "Model", "BatchScorer", "Schema", "Feature", "ParityRow", "normalize_category",
    "MISSING_CATEGORY", "MISSING_TEXT", "Monitor", "add_summaries",
    "follow", "LiveModel", "UpdateEvent",
    "Explanation",
    "SkedgeError", "SchemaError", "BundleError", "ConfigError", "DataError", "GateError", "ExportError",
    "ParityError", "EngineError",
}
# What an app that ships the runtime must never pull in (DESIGN.md "Layout").
HEAVY = ("sklearn", "pandas", "scipy", "skl2onnx", "onnxmltools", "xgboost", "lightgbm", "onnx", "coremltools",
         "dask", "pyarrow", "matplotlib", "skops", "pydantic", "joblib", "skedge.trainer", "skedge.exporter",
         "skedge.cli")


def test_public_names_are_what_we_mean() -> None:
    assert set(rt.__all__) == PUBLIC
    assert len(rt.__all__) == len(set(rt.__all__))
    for name in rt.__all__:
        assert getattr(rt, name) is not None
    for err in ("SchemaError", "BundleError", "ConfigError", "DataError", "GateError", "ExportError",
                "ParityError", "EngineError"):
        assert issubclass(getattr(rt, err), rt.SkedgeError)
    assert issubclass(rt.SchemaError, ValueError) and issubclass(rt.BundleError, ValueError)


def test_model_api_that_others_call(penguins_model: Model) -> None:
    for name in ("predict", "predict_proba", "decision_function", "predict_outputs", "verify"):
        assert callable(getattr(penguins_model, name))
    assert isinstance(penguins_model.schema, rt.Schema)
    assert penguins_model.classes == ("Adelie", "Chinstrap", "Gentoo")
    assert isinstance(penguins_model.unseen_categories, dict)
    feeds, n, single = penguins_model._plan.feeds([_first_row(penguins_model.bundle.path)] * 2)  # type: ignore[union-attr]
    assert (n, single) == (2, False) and set(feeds) == set(penguins_model.schema.names)


def _first_row(bundle: Path) -> dict[str, Any]:
    row: dict[str, Any] = json.loads((bundle / "golden.json").read_text())["rows"][0]
    return row


def test_one_row_returns_plain_python_values(penguins_bundle: Path, body_mass_bundle: Path,
                                             anomaly_bundle: Path) -> None:
    clf = load(penguins_bundle)
    row = _first_row(penguins_bundle)
    label = clf.predict(row)
    assert type(label) is str and label in clf.classes  # a string label once crashed in .item()
    proba = clf.predict_proba(row)
    assert proba.shape == (3,) and proba.dtype == np.float64 and abs(proba.sum() - 1) < 1e-9
    assert clf.classes[int(np.argmax(proba))] == label

    reg = load(body_mass_bundle)
    assert type(reg.predict(_first_row(body_mass_bundle))) is float

    ano = load(anomaly_bundle)
    arow = _first_row(anomaly_bundle)
    assert ano.predict(arow) in (1, -1) and type(ano.predict(arow)) is int
    assert type(ano.decision_function(arow)) is float
    with pytest.raises(rt.SchemaError, match="needs a classifier"):
        ano.predict_proba(arow)


def test_the_fast_path_and_the_checked_path_agree(penguins_bundle: Path) -> None:
    """A plain row takes the reusable-buffer path, a row as a dict subclass the fully checked one."""

    class Row(dict):  # type: ignore[type-arg]
        pass

    model = load(penguins_bundle)
    rows = json.loads((penguins_bundle / "golden.json").read_text())["rows"]
    for row in rows[:200]:
        assert model._plan.fast_one(Row(row)) is None
        assert np.array_equal(model.predict_proba(row), model.predict_proba(Row(row)))
        assert model.predict(row) == model.predict(Row(row))


def test_the_fast_path_fills_every_kind_in_any_order() -> None:
    """Fields of every kind, interleaved: the fast path groups them by kind in one buffer; each feed must
    still hold its own field's value, as the checked path makes it, and anything off-kind must fall back."""
    from skedge.runtime import Feature, Schema
    from skedge.runtime._schema import InputPlan

    schema = Schema(features=(Feature("b1", "boolean"), Feature("x", "number"), Feature("c1", "category",
                              categories=("a", "b")), Feature("n", "integer"), Feature("b2", "boolean"),
                              Feature("y", "number"), Feature("c2", "category", categories=("u", "v", "w")),
                              Feature("m", "integer")), task="classification")
    plan = InputPlan(schema)
    rng = np.random.default_rng(3)
    for _ in range(300):
        row = {"b1": bool(rng.integers(2)), "x": float(rng.normal() * 10.0 ** rng.integers(-30, 30)),
               "c1": str(rng.choice(["a", "b"])), "n": int(rng.integers(-10**9, 10**9)),
               "b2": bool(rng.integers(2)), "y": int(rng.integers(-5, 5)), "c2": str(rng.choice(["u", "v", "w"])),
               "m": float(rng.integers(-1000, 1000))}
        fast = plan.fast_one(row)
        assert fast is not None
        fast = {k: v.copy() for k, v in fast.items()}
        checked, n, _ = plan.feeds([row])
        assert n == 1 and fast.keys() == checked.keys()
        for k in fast:
            assert fast[k].shape == (1, 1) and fast[k].dtype == checked[k].dtype
            assert fast[k][0, 0] == checked[k][0, 0] and type(fast[k][0, 0]) is type(checked[k][0, 0])
    good = {"b1": True, "x": 1.5, "c1": "a", "n": 3, "b2": False, "y": 2.0, "c2": "w", "m": 4.0}
    assert plan.fast_one(good) is not None

    class Text(str):
        pass

    off_kind = {"b1": [1, 1.0, np.True_], "x": [True, math.nan, math.inf, 2.0**200, 2**200, np.float64(1.0), "1"],
                "n": [1.5, True, math.nan, 2**200, np.int64(3)], "m": [math.inf, -0.5],
                "b2": [0, 0.0, None], "y": [None, -math.inf], "c1": ["c", Text("a"), 1, None], "c2": [b"u", ""]}
    for name, values in off_kind.items():
        for v in values:
            assert plan.fast_one({**good, name: v}) is None, (name, v)
    assert plan.fast_one({k: v for k, v in good.items() if k != "m"}) is None
    assert plan.fast_one({**{k: v for k, v in good.items() if k != "m"}, "z": 1.0}) is None


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_runtime_imports_nothing_heavy(penguins_bundle: Path) -> None:
    out = _python(f"""
        import json, sys
        import skedge.runtime
        deferred = "onnxruntime" not in sys.modules  # loaded with the first model, not on import
        model = skedge.runtime.load(sys.argv[1])
        row = json.loads(open(sys.argv[1] + "/golden.json").read())["rows"][0]
        model.predict(row)
        model.predict_proba([row] * 3000)  # a split batch, too
        heavy = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in {HEAVY!r}))
        print(json.dumps({{"deferred": deferred, "heavy": heavy}}))
    """, str(penguins_bundle))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == {"deferred": True, "heavy": []}


def test_a_model_the_field_converted_loads_without_the_field(tmp_path: Path) -> None:
    """A bundle whose steps went through skl2onnx (PCA, calibrated SVC) runs on numpy + onnxruntime alone."""
    import pandas as pd
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    from skedge.exporter import export

    X, y = load_iris(return_X_y=True, as_frame=True)
    pipe = make_pipeline(PCA(3), CalibratedClassifierCV(SVC(), ensemble=False)).fit(X, y)
    bundle = export(pipe, X, tmp_path, name="field", targets=("onnx",))
    out = _python(f"""
        import json, sys
        import skedge.runtime
        model = skedge.runtime.load(sys.argv[1])
        rows = json.loads(open(sys.argv[1] + "/golden.json").read())["rows"]
        print(json.dumps({{"labels": [int(v) for v in model.predict(rows[:5])],
                          "heavy": sorted(m for m in sys.modules
                                          if any(m == h or m.startswith(h + ".") for h in {HEAVY!r}))}}))
    """, str(bundle))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    rows = json.loads((bundle / "golden.json").read_text())["rows"][:5]
    assert result["labels"] == pipe.predict(pd.DataFrame(rows)[list(X.columns)].astype(float)).tolist()


@pytest.mark.parametrize("package", ["skedge.trainer", "skedge.exporter"])
def test_train_packages_name_the_extra_when_it_is_missing(package: str) -> None:
    # the runtime-only wheel test proves this for real; here sklearn is hidden from one interpreter
    out = _python(f"""
        import sys
        sys.modules["sklearn"] = None
        try:
            import {package}
        except ImportError as exc:
            print(exc)
    """)
    assert "pip install 'skedge[train]'" in out.stdout, out.stdout + out.stderr


def test_exact_ties_go_to_the_first_class_like_sklearn(tmp_path: Path) -> None:
    """Every leaf holds both classes half and half: p = 0.5 exactly, and sklearn answers classes_[0]."""
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from skedge.exporter import export

    X = pd.DataFrame({"x": [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]})
    y = np.array(["zebra", "aardvark"] * 4)  # classes_ sorts them: aardvark first
    pipe = Pipeline([("model", RandomForestClassifier(n_estimators=4, bootstrap=False, random_state=0))]).fit(X, y)
    rows = [{"x": float(v)} for v in (0.0, 1.0, 2.5, 3.0)]
    want_proba = pipe.predict_proba(pd.DataFrame(rows))
    assert np.all(want_proba == 0.5), "the test needs exact ties"
    model = load(export(pipe, X, tmp_path, name="ties", targets=("onnx",)))
    assert list(model.predict(rows)) == list(pipe.predict(pd.DataFrame(rows))) == ["aardvark"] * 4
    assert [model.predict(r) for r in rows] == ["aardvark"] * 4
    np.testing.assert_array_equal(model.predict_proba(rows), want_proba)


def test_a_dataframe_row_as_a_series_is_one_row(penguins_bundle: Path) -> None:
    import pandas as pd

    from skedge.runtime import load

    model = load(penguins_bundle)
    frame = pd.read_csv(Path(__file__).resolve().parents[2] / "examples" / "penguins.csv")[model.schema.names]
    assert model.predict(frame.iloc[0]) == model.predict(frame.iloc[[0]])[0]
    assert model.predict_proba(frame.iloc[5]).shape == (3,)
