"""The fast batch path answers bit for bit like the one-row path and like scikit-learn (issue #17).

Large forests are exported in the leaf-number layout (exporter/onnx/trees.py ``_leaf_sum``: grouped
float32-threshold ensembles that find each tree's leaf, a double table, CumSum in sklearn's order) and
batches run in chunks of at most ``CHUNK_ROWS`` rows on a pool. Each test compares bits (``view(uint64)``),
not closeness: a probability one ulp off is a failure here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

import skedge.exporter.onnx.trees as onnx_trees
import skedge.runtime._model as runtime_model
from skedge.exporter import export
from skedge.runtime import load

# small groups, so that a forest quick to train and export still spans several TreeEnsemble nodes
GROUP_NODES = 1024


def _data(n: int, seed: int, classes: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = {f"x{j}": rng.normal(0, 1 + j, n) for j in range(5)}
    x["x1"][rng.random(n) < 0.05] = np.nan  # the trees' own missing-value routing, no imputer
    x["x4"] = np.round(x["x4"], 1)  # many rows exactly on a threshold's float32 neighbours
    frame = pd.DataFrame(x)
    score = frame.x0 + 0.3 * np.nan_to_num(frame.x1) - 0.2 * frame.x2 + rng.normal(0, 1, n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return frame, y


def _export(pipeline: Any, frame: pd.DataFrame, where: Path, name: str) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(onnx_trees, "GROUP_NODES", GROUP_NODES)
        path: Path = export(pipeline, frame.sample(200, random_state=1), where, name=name, targets=("onnx",))
    return path


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, pd.DataFrame]:
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data(1500, 0)
    # an even tree count and leaves of 2+ samples: exact ties between classes happen (sklearn: first class)
    rf = RandomForestClassifier(n_estimators=16, min_samples_leaf=2, random_state=0).fit(X, np.array(list("abc"))[y])
    path = _export(rf, X, tmp_path_factory.mktemp("exact"), "rf")
    test, _ = _data(6000, 1)
    return rf, path, test


@pytest.fixture(scope="module")
def binary_forest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, pd.DataFrame]:
    from sklearn.ensemble import ExtraTreesClassifier

    X, y = _data(1200, 2, classes=2)
    et = ExtraTreesClassifier(n_estimators=10, min_samples_leaf=1, random_state=0).fit(X, y)
    path = _export(et, X, tmp_path_factory.mktemp("exact"), "et")
    test, _ = _data(5000, 3, classes=2)
    return et, path, test


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, pd.DataFrame]:
    from sklearn.ensemble import RandomForestRegressor

    X, y = _data(1200, 4)
    rf = RandomForestRegressor(n_estimators=8, random_state=0).fit(X, y * 10.0 + X.x0.to_numpy())
    path = _export(rf, X, tmp_path_factory.mktemp("exact"), "rfr")
    test, _ = _data(5000, 5)
    return rf, path, test


def _bits(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.uint64)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def _sklearn(est: Any, frame: pd.DataFrame, method: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # feature-name warnings of a bare estimator
        out: np.ndarray = getattr(est, method)(frame)
    return out


def test_large_forests_take_the_leaf_layout(forest: Any, regressor: Any, penguins_bundle: Path) -> None:
    for _, path, _ in (forest, regressor):
        ops = [n.op_type for n in onnx.load(path / "model.onnx").graph.node]
        assert ops.count("TreeEnsembleRegressor") > 1 and "CumSum" in ops, ops
    # the example's forest (2,966 nodes, pure leaves: whole-number sums) keeps one ensemble, no gather
    ops = [n.op_type for n in onnx.load(penguins_bundle / "model.onnx").graph.node]
    assert ops.count("TreeEnsembleRegressor") == 1 and "CumSum" not in ops


@pytest.mark.parametrize("fixture", ["forest", "binary_forest"])
def test_batch_is_bit_for_bit_sklearn(fixture: str, request: pytest.FixtureRequest) -> None:
    est, path, test = request.getfixturevalue(fixture)
    model = load(path)
    want = _sklearn(est, test, "predict_proba")
    got = model.predict_proba(test)
    assert np.array_equal(_bits(got), _bits(want)), np.abs(got - want).max()
    labels = model.predict(test)
    assert (labels == _sklearn(est, test, "predict")).all()


def test_exact_ties_go_to_the_first_class_as_in_sklearn(forest: Any) -> None:
    est, path, test = forest
    proba = _sklearn(est, test, "predict_proba")
    top = np.sort(proba, axis=1)
    tied = top[:, -1] == top[:, -2]
    assert tied.sum() >= 10, tied.sum()  # the data must hold ties for this test to mean anything
    labels = load(path).predict(test)
    assert (labels[tied] == _sklearn(est, test, "predict")[tied]).all()
    # sklearn breaks a tie towards the first class: check that the ties here are not all the same way round
    assert len({tuple(np.flatnonzero(p == p.max())) for p in proba[tied]}) > 1


def test_regressor_batch_is_bit_for_bit_sklearn(regressor: Any) -> None:
    est, path, test = regressor
    got = load(path).predict(test)
    assert np.array_equal(_bits(got), _bits(_sklearn(est, test, "predict")))


@pytest.mark.parametrize("fixture", ["forest", "regressor"])
def test_big_batch_equals_row_by_row(fixture: str, request: pytest.FixtureRequest) -> None:
    _, path, test = request.getfixturevalue(fixture)
    model = load(path)
    rows = _rows(test.iloc[:400])
    if "probabilities" in model.schema.outputs:
        one = np.stack([model.predict_proba(r) for r in rows])
        assert np.array_equal(_bits(model.predict_proba(test)[:400]), _bits(one))
        assert np.array_equal(_bits(model.predict_proba(rows)), _bits(one))  # list of dicts, one run
    labels = np.asarray([model.predict(r) for r in rows])
    assert (model.predict(test)[:400] == labels).all()


def test_chunks_answer_like_one_run(forest: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small chunks on the pool, chunks one after the other on one thread, and one run: the same bits."""
    _, path, test = forest
    one_thread = load(path, threads=1)
    pooled = load(path)
    assert one_thread._chunk_rows == pooled._chunk_rows == runtime_model.CHUNK_ROWS  # a forest states no bound
    monkeypatch.setattr(one_thread, "_chunk_rows", 10**9)
    whole = one_thread.predict_proba(test)  # a single run of 6,000 rows
    for model in (one_thread, pooled):
        monkeypatch.setattr(model, "_chunk_rows", 333)
        assert np.array_equal(_bits(model.predict_proba(test)), _bits(whole))


# -- the export's own proof refuses a broken leaf layout ----------------------------------------------------

def _refused(est: Any, where: Path, mp: pytest.MonkeyPatch) -> None:
    from skedge.runtime import ParityError

    X, _ = _data(1500, 0)
    mp.setattr(onnx_trees, "GROUP_NODES", GROUP_NODES)
    with pytest.raises(ParityError, match="does not answer like sklearn"):
        export(est, X.sample(200, random_state=1), where, name="mutant", targets=("onnx",))


def test_thresholds_rounded_to_nearest_are_refused(forest: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    # float32(t) rounds up half the time: a row at float32(t) > t then goes left in ONNX, right in sklearn
    monkeypatch.setattr(onnx_trees, "_down_to_float32", lambda v: np.asarray(v, dtype=np.float32))
    _refused(forest[0], tmp_path, monkeypatch)


def test_leaf_layout_without_the_float32_cast_is_refused(forest: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # double input: the ensembles compare x itself with the double thresholds, not float32(x) as sklearn does
    monkeypatch.setattr(onnx_trees, "_float32_input", lambda g, x: g.matrix(x, "tree_in"))
    _refused(forest[0], tmp_path, monkeypatch)


# -- the layout's speed-ups keep sklearn's bits -------------------------------------------------------------

def _threshold_rows(est: Any, base: pd.DataFrame, nullable: set[str]) -> pd.DataFrame:
    """Rows that sit on every split: float32(t) rounded down and its two float32 neighbours, plus the values
    where a turned-around node (``-x <= nextbelow(-t)``) could differ from ``x <= t``: ±0, subnormals, the
    float32 extremes, NaN (where the field takes it; the runtime refuses ±inf)."""
    from skedge.exporter.onnx.trees import _down_to_float32, tree_thresholds

    names = list(base.columns)
    out = []
    for i, (f, t) in enumerate(tree_thresholds(est)):
        t32 = _down_to_float32([t])[0]
        for v in (t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))):
            if not np.isfinite(v):  # a split of missing against present values has t = inf
                continue
            row = base.iloc[i % len(base)].copy()
            row[names[f]] = float(v)
            out.append(row)
    for j, name in enumerate(names):
        extremes = (0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38)
        for v in extremes + ((np.nan,) if name in nullable else ()):
            row = base.iloc[j % len(base)].copy()
            row[name] = v
            out.append(row)
    return pd.DataFrame(out).reset_index(drop=True)


@pytest.mark.parametrize("fixture", ["forest", "binary_forest", "regressor"])
def test_turned_nodes_answer_like_sklearn_on_every_split(fixture: str, request: pytest.FixtureRequest) -> None:
    est, path, test = request.getfixturevalue(fixture)
    ops = [n.op_type for n in onnx.load(path / "model.onnx").graph.node]
    assert "Neg" in ops, "no node was turned around: the test would prove nothing"
    model = load(path)
    rows = _threshold_rows(est, test.iloc[:50], {f.name for f in model.schema.features if f.nullable})
    assert len(rows) > 500
    if hasattr(est, "predict_proba"):
        assert np.array_equal(_bits(model.predict_proba(rows)), _bits(_sklearn(est, rows, "predict_proba")))
        assert (model.predict(rows) == _sklearn(est, rows, "predict")).all()
    else:
        assert np.array_equal(_bits(model.predict(rows)), _bits(_sklearn(est, rows, "predict")))


def test_one_ensemble_only_where_its_sums_are_whole_numbers(tmp_path: Path) -> None:
    """A small pure-leaf forest keeps the one-node layout: its float32 sums are whole numbers, the same bits
    whatever order onnxruntime adds them in, on one thread or two. A small forest with mixed leaves takes the
    exact leaf layout (its float32 sums would round)."""
    import onnxruntime as ort
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data(800, 6)
    test, _ = _data(6000, 7)
    pure = RandomForestClassifier(n_estimators=12, random_state=0).fit(X, y)
    mixed = RandomForestClassifier(n_estimators=12, min_samples_leaf=4, random_state=0).fit(X, y)
    assert {float(v) for t in pure.estimators_ for v in t.tree_.value[t.tree_.children_left == -1].ravel()} \
        <= {0.0, 1.0}
    for est, one_node in ((pure, True), (mixed, False)):
        path = export(est, X.sample(200, random_state=1), tmp_path, name=f"rf{int(one_node)}", targets=("onnx",))
        ops = [n.op_type for n in onnx.load(path / "model.onnx").graph.node]
        assert (ops.count("TreeEnsembleRegressor") == 1 and "CumSum" not in ops) is one_node, ops
        want = _sklearn(est, test, "predict_proba")
        assert np.array_equal(_bits(load(path).predict_proba(test)), _bits(want))
        model = load(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2  # onnxruntime splits the trees across threads and adds the parts
        session = ort.InferenceSession(str(path / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        feeds, _, _ = model._plan.feeds(test)
        got = session.run([model._outputs["probabilities"]], feeds)[0]
        assert np.array_equal(_bits(got), _bits(want))


def test_one_hot_strings_by_label_encoder_answer_like_sklearn(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = _data(1500, 8)
    rng = np.random.default_rng(9)
    colors = np.array(["red", "green", "blue", "", " ", "Zoë"], dtype=object)

    def with_color(frame: pd.DataFrame, extra: list[Any]) -> pd.DataFrame:
        c = rng.choice(np.array(list(colors) + extra, dtype=object), len(frame))
        return frame.assign(color=pd.Series(c, dtype=object).where(pd.notna(c), np.nan))

    X = with_color(X, [None])
    pipe = Pipeline([("ct", ColumnTransformer([("oh", OneHotEncoder(handle_unknown="ignore"), ["color"])],
                                              remainder="passthrough", sparse_threshold=0.0)),
                     ("rf", RandomForestClassifier(n_estimators=10, min_samples_leaf=3, random_state=0))])
    pipe.fit(X, y)
    path = export(pipe, X.sample(200, random_state=1), tmp_path, name="colors", targets=("onnx",))
    ops = [n.op_type for n in onnx.load(path / "model.onnx").graph.node]
    assert "LabelEncoder" in ops, ops
    test = with_color(_data(4000, 10)[0], [None, "never-seen", "RED", "\uffff "])
    want = _sklearn(pipe, test, "predict_proba")
    model = load(path)
    assert np.array_equal(_bits(model.predict_proba(test)), _bits(want))
    text = test.assign(color=test["color"].astype("str"))  # pandas' text dtype: the factorized feed
    assert np.array_equal(_bits(model.predict_proba(text)), _bits(want))
    assert np.array_equal(_bits(np.stack([model.predict_proba(r) for r in _rows(test.iloc[:300])])),
                          _bits(want[:300]))
