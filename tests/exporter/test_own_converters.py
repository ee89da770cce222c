"""skedge's own exact converters (issue 12 point 2), each checked against sklearn's real output.

Every case fits a small real pipeline, exports a bundle (``export`` + ``load``) and compares the runtime's
answers with the pipeline's own on holdout rows and on adversarial rows: values exactly at thresholds and
quantile references and one float64 step either side, zero distance, unseen categories, NaN. The bound is
0 label mismatches and 1e-5 absolute; ``MEASURED`` collects each case's max difference for the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    OneHotEncoder,
    PowerTransformer,
    QuantileTransformer,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier

from skedge.exporter import ExportError, build, export
from skedge.runtime import load

from .datasets import mixed, numeric, targets

BOUND = 1e-5
MEASURED: dict[str, float] = {}
NUM = ["a", "b", "c", "d"]


@pytest.fixture(scope="module", autouse=True)
def _report_measured() -> Any:
    """SKEDGE_MEASURED=path.json writes each case's max difference (for docs and reports)."""
    yield
    import json
    import os

    if os.environ.get("SKEDGE_MEASURED"):
        Path(os.environ["SKEDGE_MEASURED"]).write_text(json.dumps(MEASURED, indent=1, sort_keys=True))


def _bundle(pipe: Any, sample: pd.DataFrame, tmp_path: Path, name: str, **kwargs: Any) -> Any:
    return load(export(pipe, sample, tmp_path, name=name.replace("_", "-"), targets=("onnx",), **kwargs))


def _agree(pipe: Any, model: Any, rows: pd.DataFrame, case: str) -> float:
    """0 label mismatches and outputs within BOUND (relative above 1); returns the max abs difference."""
    if is_classifier(pipe):
        np.testing.assert_array_equal(model.predict(rows), pipe.predict(rows))
        got, want = model.predict_proba(rows), pipe.predict_proba(rows)
    else:
        got, want = np.ravel(model.predict(rows)), np.ravel(pipe.predict(rows))
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    diff = float(np.nanmax(np.abs(got - want), initial=0.0))
    MEASURED[case] = max(MEASURED.get(case, 0.0), diff)
    # the parity rule: BOUND absolute up to 1, relative above (a tree ensemble's float32 sums of values ~100)
    rel = float(np.nanmax(np.abs(got - want) / np.maximum(1.0, np.abs(want)), initial=0.0))
    assert rel <= BOUND, (case, diff, rel)
    return diff


def _steps_around(values: np.ndarray) -> np.ndarray:
    """Each value and its float64 neighbours: where a ``>`` or ``<=`` shows which way it was written."""
    v = np.asarray(values, dtype=np.float64)
    return np.concatenate([v, np.nextafter(v, np.inf), np.nextafter(v, -np.inf)])


def _rows_with(base: pd.DataFrame, col: str, values: np.ndarray) -> pd.DataFrame:
    """Rows of ``base`` (cycled) whose ``col`` takes each of ``values``."""
    rows = base.iloc[np.arange(len(values)) % len(base)].copy().reset_index(drop=True)
    rows[col] = values
    return rows


@pytest.fixture(scope="module")
def num() -> tuple[pd.DataFrame, pd.Series, pd.Series, pd.Series]:
    X = numeric(300)
    multi, binary, value = targets(X)
    return X, multi, binary, value


# -- 1. Binarizer ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("threshold", [0.0, 0.5, -1.25])
def test_binarizer_is_strict_at_the_threshold(num: tuple, threshold: float, tmp_path: Path) -> None:
    X, multi, _, _ = num
    Xb = X.copy()
    Xb["a"] = np.round(Xb["a"] * 4) / 4  # many rows exactly on the threshold
    pipe = make_pipeline(ColumnTransformer([("bin", Binarizer(threshold=threshold), ["a", "d"]),
                                            ("num", StandardScaler(), ["b", "c"])]),
                         LogisticRegression(max_iter=1000)).fit(Xb, multi)
    model = _bundle(pipe, Xb, tmp_path, f"bin{threshold}")
    adversarial = _rows_with(Xb, "a", _steps_around(np.full(30, threshold)))
    # the step alone: x == threshold is 0 (skl2onnx answers 1)
    ct = pipe[0]
    assert ct.transform(adversarial.iloc[:1])[0, 0] == 0.0
    _agree(pipe, model, Xb, "Binarizer holdout")
    _agree(pipe, model, adversarial, "Binarizer at threshold")


def test_binarizer_output_feeds_a_tree_exactly(num: tuple, tmp_path: Path) -> None:
    X, _, binary, _ = num
    pipe = make_pipeline(Binarizer(threshold=0.1), DecisionTreeClassifier(max_depth=4, random_state=0))
    pipe.fit(X[NUM], binary)
    model = _bundle(pipe, X[NUM], tmp_path, "bintree")
    rows = _rows_with(X[NUM], "a", _steps_around(np.full(20, 0.1)))
    _agree(pipe, model, rows, "Binarizer + tree")


# -- 2. FunctionTransformer over ufuncs, TransformedTargetRegressor --------------------------------------------

UFUNC_CASES = {
    "log1p": (np.log1p, lambda X: X.abs()),
    "expm1": (np.expm1, lambda X: X / 200.0),
    "log": (np.log, lambda X: X.abs() + 1e-3),
    "exp": (np.exp, lambda X: X / 200.0),
    "sqrt": (np.sqrt, lambda X: X.abs()),
    "abs": (np.abs, lambda X: X),
    "square": (np.square, lambda X: X),
    "tanh": (np.tanh, lambda X: X / 10.0),
    "log10": (np.log10, lambda X: X.abs() + 1e-3),
    "log2": (np.log2, lambda X: X.abs() + 1e-3),
    "negative": (np.negative, lambda X: X),
    "reciprocal": (np.reciprocal, lambda X: X.abs() + 0.5),
    "floor": (np.floor, lambda X: X / 3.0),
    "ceil": (np.ceil, lambda X: X / 3.0),
    "sign": (np.sign, lambda X: X),
}


@pytest.mark.parametrize("name", sorted(UFUNC_CASES))
def test_function_transformer_ufunc(num: tuple, name: str, tmp_path: Path) -> None:
    X, _, _, value = num
    func, domain = UFUNC_CASES[name]
    Xd = domain(X[NUM])
    pipe = make_pipeline(FunctionTransformer(func), StandardScaler(), Ridge()).fit(Xd, value)
    model = _bundle(pipe, Xd, tmp_path, f"ft{name}")
    tiny = pd.DataFrame({c: [0.0, 1e-12, 1e-300, 3e-8, 1.0] for c in NUM})
    _agree(pipe, model, pd.concat([Xd, domain(tiny)], ignore_index=True), f"FunctionTransformer({name})")


def test_transformed_target_with_a_normal_quantile_target_is_refused(num: tuple) -> None:
    X, _, _, value = num
    ttr = TransformedTargetRegressor(Ridge(), transformer=QuantileTransformer(n_quantiles=50,
                                                                             output_distribution="normal"))
    ttr.fit(X[NUM], value)
    with pytest.raises(ExportError, match="normal CDF"):
        build(ttr, X[NUM], name="ttrnormal", targets=("onnx",))


def test_function_transformer_with_a_python_function_stays_refused(num: tuple) -> None:
    X, _, _, value = num
    pipe = make_pipeline(FunctionTransformer(lambda v: v * 2), Ridge()).fit(X[NUM], value)
    with pytest.raises(ExportError, match="arbitrary Python code"):
        build(pipe, X[NUM], name="lambda", targets=("onnx",))


# (a box-cox target is left out: on the far-outside edge rows sklearn itself answers inf, which golden.json
# cannot hold)
@pytest.mark.parametrize("case", ["log1p", "sqrt_square", "scaler", "identity", "power", "quantile"])
def test_transformed_target_regressor(num: tuple, case: str, tmp_path: Path) -> None:
    X, _, _, value = num
    inner = make_pipeline(StandardScaler(), Ridge())
    ttr = {
        "log1p": lambda: TransformedTargetRegressor(inner, func=np.log1p, inverse_func=np.expm1),
        "sqrt_square": lambda: TransformedTargetRegressor(inner, func=np.sqrt, inverse_func=np.square),
        "scaler": lambda: TransformedTargetRegressor(inner, transformer=StandardScaler()),
        "identity": lambda: TransformedTargetRegressor(inner),
        "power": lambda: TransformedTargetRegressor(inner, transformer=PowerTransformer()),
        "quantile": lambda: TransformedTargetRegressor(inner, transformer=QuantileTransformer(n_quantiles=50)),
    }[case]().fit(X[NUM], value)
    model = _bundle(ttr, X[NUM], tmp_path, f"ttr{case}")
    _agree(ttr, model, X[NUM], f"TransformedTargetRegressor({case})")
    # inside a pipeline, around a forest-free regressor too
    pipe = make_pipeline(SimpleImputer(), TransformedTargetRegressor(LinearRegression(), func=np.log1p,
                                                                     inverse_func=np.expm1)).fit(X[NUM], value)
    _agree(pipe, _bundle(pipe, X[NUM], tmp_path, f"ttrpipe{case}"), X[NUM], "TransformedTargetRegressor in a pipe")


# -- 3. SimpleImputer(add_indicator=True) ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def mix() -> tuple[pd.DataFrame, pd.Series, pd.Series, pd.Series]:
    X = mixed(300)
    multi, binary, value = targets(X)
    return X, multi, binary, value


def _adversarial_mixed(X: pd.DataFrame) -> pd.DataFrame:
    """All missing, unseen categories, each field missing alone."""
    rows = [X.iloc[0].to_dict() for _ in range(8)]
    for r in rows[:1]:
        r.update({c: np.nan for c in X.columns})
    rows[1].update(color="purple", size="XXL")
    for i, c in enumerate(X.columns[:6]):
        rows[2 + i][c] = np.nan
    return pd.DataFrame(rows, columns=X.columns).astype(X.dtypes.to_dict())


@pytest.mark.parametrize("strategy", ["mean", "median", "constant"])
def test_numeric_imputer_with_indicator(mix: tuple, strategy: str, tmp_path: Path) -> None:
    X, multi, _, _ = mix
    Xn = X[NUM].copy()
    Xn.loc[::7, "b"] = np.nan  # a, b, c have missing values in training, d has none: no indicator for d
    pipe = make_pipeline(SimpleImputer(strategy=strategy, fill_value=-1.0, add_indicator=True), StandardScaler(),
                         LogisticRegression(max_iter=1000)).fit(Xn, multi)
    assert list(pipe[0].indicator_.features_) == [0, 1, 2]
    model = _bundle(pipe, Xn, tmp_path, f"ind{strategy}", nullable=True)
    _agree(pipe, model, pd.concat([Xn, _adversarial_mixed(X)[NUM]], ignore_index=True), "add_indicator numbers")


@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_string_imputer_with_indicator(mix: tuple, strategy: str, tmp_path: Path) -> None:
    X, multi, _, _ = mix
    cat = make_pipeline(SimpleImputer(strategy=strategy, fill_value="none", add_indicator=True),
                        OneHotEncoder(handle_unknown="ignore"))
    pipe = make_pipeline(ColumnTransformer([("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()),
                                             NUM),
                                            ("cat", cat, ["color", "size"])], sparse_threshold=0.0),
                         LogisticRegression(max_iter=1000)).fit(X, multi)
    model = _bundle(pipe, X, tmp_path, f"sind{strategy}", nullable=True)
    _agree(pipe, model, pd.concat([X, _adversarial_mixed(X)], ignore_index=True), "add_indicator strings")


# -- 4. KNeighbors with weights="distance" ---------------------------------------------------------------------

def _knn_rows(X: pd.DataFrame) -> pd.DataFrame:
    """Training rows themselves (zero distance), a duplicated training row, and new rows."""
    rng = np.random.default_rng(5)
    new = X.sample(40, random_state=1).reset_index(drop=True) + rng.normal(0, 0.01, (40, X.shape[1]))
    return pd.concat([X, new], ignore_index=True)


@pytest.mark.parametrize("k", [1, 5, 9])
@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_knn_classifier_distance(num: tuple, k: int, algorithm: str, tmp_path: Path) -> None:
    X, multi, _, _ = num
    # duplicated training rows (same label: which of two equidistant rows a KD-tree lists first is its own
    # business, and the bundle's TopK may list the other)
    Xd = pd.concat([X[NUM], X[NUM].iloc[:5]], ignore_index=True)
    y = pd.concat([multi, multi.iloc[:5]], ignore_index=True)
    pipe = make_pipeline(StandardScaler(), __import__("sklearn.neighbors", fromlist=["x"]).KNeighborsClassifier(
        n_neighbors=k, weights="distance", algorithm=algorithm)).fit(Xd, y)
    model = _bundle(pipe, Xd, tmp_path, f"knnc{k}{algorithm}")
    rows = _knn_rows(Xd)
    # zero distance: on a training row sklearn answers that row's label with probability 1
    assert (pipe.predict(X[NUM]) == multi).all() and (pipe.predict_proba(X[NUM]).max(axis=1) == 1.0).all()
    _agree(pipe, model, rows, "KNeighborsClassifier(distance)")


@pytest.mark.parametrize("k", [1, 5, 10])
def test_knn_regressor_distance(num: tuple, k: int, tmp_path: Path) -> None:
    X, _, _, value = num
    from sklearn.neighbors import KNeighborsRegressor

    pipe = make_pipeline(SimpleImputer(), KNeighborsRegressor(n_neighbors=k, weights="distance")).fit(X[NUM], value)
    model = _bundle(pipe, X[NUM], tmp_path, f"knnr{k}")
    np.testing.assert_allclose(pipe.predict(X[NUM]), value, rtol=1e-12)  # zero distance: the row's own value
    _agree(pipe, model, _knn_rows(X[NUM]), "KNeighborsRegressor(distance)")


# -- 5. PowerTransformer, QuantileTransformer ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["yeo-johnson", "box-cox"])
@pytest.mark.parametrize("standardize", [True, False])
def test_power_transformer(num: tuple, method: str, standardize: bool, tmp_path: Path) -> None:
    X, _, binary, value = num
    Xp = X[NUM].copy()
    if method == "box-cox":  # strictly positive data, as sklearn demands
        Xp = Xp - Xp.min() + 0.5
    pipe = make_pipeline(PowerTransformer(method=method, standardize=standardize), Ridge()).fit(Xp, value)
    model = _bundle(pipe, Xp, tmp_path, f"pow{method}{standardize}")
    extra = pd.DataFrame({c: [1e-9, 0.5, 1.0, 1e6] for c in NUM})
    if method == "yeo-johnson":
        extra = pd.concat([extra, pd.DataFrame({c: [0.0, -0.0, -1e-9, -1.0, -1e6] for c in NUM})])
    _agree(pipe, model, pd.concat([Xp, extra], ignore_index=True), f"PowerTransformer({method})")


def _folded(pipe: Any, X: pd.DataFrame, rows: pd.DataFrame, tmp_path: Path, name: str) -> None:
    """A tree after a log/exp-based transform: onnxruntime's Log/Exp are not glibc's to the last bit, and the
    threshold sweep probes float32(z) <= t exactly where that shows; folded into the transform's input
    (folding.py), every split is sklearn's. Without the fold the export refuses (ParityError)."""
    from skedge.exporter import ParityError
    from skedge.exporter.onnx import folding

    model = _bundle(pipe, X, tmp_path, name)
    _agree(pipe, model, rows, name)
    # the fold is what makes it exact: without it the sweep finds the flipped rows
    real = folding._fold
    folding._fold = lambda g, m, est: None  # type: ignore[assignment]
    try:
        with pytest.raises(ParityError, match="does not answer like sklearn"):
            _bundle(pipe, X, tmp_path, name + "-unfolded")
    finally:
        folding._fold = real  # type: ignore[assignment]


# box-cox before a tree is left out: the export sweep probes values <= 0, which sklearn refuses to transform
@pytest.mark.parametrize("method", ["yeo-johnson"])
@pytest.mark.parametrize("est", ["tree", "hgb"])
def test_power_transformer_before_a_tree_is_folded(num: tuple, method: str, est: str, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, _, binary, _ = num
    Xp = X[NUM]
    model = DecisionTreeClassifier(max_depth=5, random_state=0) if est == "tree" else \
        HistGradientBoostingClassifier(max_iter=10, random_state=0)
    pipe = make_pipeline(PowerTransformer(method=method), model).fit(Xp, binary)
    _folded(pipe, Xp, Xp, tmp_path, f"pow{est}{method}")


# np.sqrt needs no fold (IEEE sqrt is correctly rounded, onnxruntime's too): exact either way
@pytest.mark.parametrize("func", ["log1p", "log"])
@pytest.mark.parametrize("est", ["forest", "boosting"])
def test_ufunc_before_trees_is_folded(num: tuple, func: str, est: str, tmp_path: Path) -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    X, multi, _, value = num
    Xa = X[NUM].abs() + 0.01
    if est == "forest":
        model: Any = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0)
        y = multi
    else:
        model, y = GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0), value
    pipe = make_pipeline(FunctionTransformer(getattr(np, func)), model).fit(Xa, y)
    _folded(pipe, Xa, Xa, tmp_path, f"uf{est}{func}")


def test_power_transformer_lambda_edge_cases(tmp_path: Path) -> None:
    """The branches of Yeo-Johnson where lambda is 0 or 2 (fitted lambdas set to them)."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"u": rng.normal(0, 3, 200), "v": rng.normal(0, 3, 200)})
    y = X["u"] - X["v"] + rng.normal(0, 0.1, 200)
    pipe = make_pipeline(PowerTransformer(), LinearRegression()).fit(X, y)
    pt = pipe[0]
    pt.lambdas_ = np.array([0.0, 2.0])
    pt._scaler.fit(np.column_stack([__import__("scipy.stats", fromlist=["x"]).yeojohnson(X[c].to_numpy(), lm)
                                    for c, lm in zip("uv", pt.lambdas_, strict=True)]))
    _agree(pipe, _bundle(pipe, X, tmp_path, "powedge"), X, "PowerTransformer(lambda 0/2)")


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
@pytest.mark.parametrize("n_quantiles", [10, 100])
def test_quantile_transformer(num: tuple, distribution: str, n_quantiles: int, tmp_path: Path) -> None:
    X, _, binary, value = num
    Xq = X[NUM].copy()  # column d holds 20 integers: repeated quantiles, averaged both directions
    qt = QuantileTransformer(n_quantiles=n_quantiles, output_distribution=distribution)
    pipe = make_pipeline(qt, Ridge()).fit(Xq, value)
    model = _bundle(pipe, Xq, tmp_path, f"qt{distribution}{n_quantiles}")
    refs = pipe[0].quantiles_
    # every quantile reference, one float64 step either side, and the far outside
    at = pd.DataFrame({c: _steps_around(refs[:, j]) for j, c in enumerate(NUM)})
    far = pd.DataFrame({c: [-1e12, 1e12, refs[0, j] - 1e-8, refs[-1, j] + 1e-8] for j, c in enumerate(NUM)})
    _agree(pipe, model, pd.concat([Xq, at, far], ignore_index=True), f"QuantileTransformer({distribution})")
    tree = make_pipeline(QuantileTransformer(n_quantiles=n_quantiles, output_distribution=distribution),
                         DecisionTreeClassifier(max_depth=5, random_state=0)).fit(Xq, binary)
    rows = pd.concat([Xq, at], ignore_index=True)
    if distribution == "uniform":  # np.interp is reproduced bit for bit: exact on every split
        _agree(tree, _bundle(tree, Xq, tmp_path, f"qtt{n_quantiles}"), rows, "QuantileTransformer(uniform) + tree")
    else:  # norm.ppf is not scipy's to the last bit: folded
        _folded(tree, Xq, rows, tmp_path, f"qtn{n_quantiles}")


# -- 6. HistGradientBoosting with native categorical splits ----------------------------------------------------

def _shops(n: int = 400, seed: int = 4) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Categories whose effect is not ordered (so the trees split by sets), with missing values."""
    rng = np.random.default_rng(seed)
    store = rng.choice([f"s{i}" for i in range(12)], n)
    city = rng.choice(["Zürich", "Genève", "Paris", "Köln", "Oslo"], n)
    x = rng.normal(size=n)
    effect = {f"s{i}": e for i, e in enumerate(rng.normal(0, 2, 12))}
    score = np.array([effect[s] for s in store]) + np.where(city == "Oslo", 1.5, 0.0) + x
    X = pd.DataFrame({"store": store.astype(object), "x": x, "city": city.astype(object)})
    X.loc[rng.random(n) < 0.05, "store"] = np.nan
    X.loc[rng.random(n) < 0.05, "x"] = np.nan
    return X, pd.Series(np.digitize(score, [-1, 1])), pd.Series(score * 10 + 3)


def _cat_rows(X: pd.DataFrame) -> pd.DataFrame:
    rows = X.head(20).copy().reset_index(drop=True)
    rows.loc[0, "store"] = "never-seen"
    rows.loc[1, "city"] = "Atlantis"
    rows.loc[2, ["store", "city", "x"]] = np.nan
    return pd.concat([X, rows], ignore_index=True)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
@pytest.mark.parametrize("form", ["from_dtype", "indices_after_ordinal", "raw_number_codes"])
def test_hgb_native_categorical(task: str, form: str, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.preprocessing import OrdinalEncoder

    X, y_class, y_value = _shops()
    y = y_class if task == "classifier" else y_value
    make = HistGradientBoostingClassifier if task == "classifier" else HistGradientBoostingRegressor
    if form == "from_dtype":  # pandas category columns straight into the model
        Xc = X.astype({"store": "category", "city": "category"})
        pipe = make(max_iter=10, categorical_features="from_dtype", random_state=0).fit(Xc, y)
        sample, rows = Xc, _cat_rows(X).astype({"store": "category", "city": "category"})
    elif form == "raw_number_codes":  # numbers used as category codes, declared by a boolean mask
        Xn = X.assign(store=X["store"].str[1:].astype(float) * 10, city=X["city"].map(
            {c: i for i, c in enumerate(sorted(X["city"].unique()))}).astype(float))
        pipe = make(max_iter=10, categorical_features=[True, False, True], random_state=0).fit(Xn, y)
        rows = Xn.head(30).copy().reset_index(drop=True)
        rows.loc[0, "store"] = 35.0  # a number never seen as a code
        rows.loc[1, "store"] = 20.5  # between two codes
        rows.loc[2, "city"] = -1.0
        rows.loc[3, ["store", "city", "x"]] = np.nan
        sample, rows = Xn, pd.concat([Xn, rows], ignore_index=True)
    else:  # an OrdinalEncoder in front, its codes declared categorical by index
        pre = ColumnTransformer([("codes", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                          encoded_missing_value=np.nan), ["store", "city"]),
                                 ("num", "passthrough", ["x"])])
        pipe = make_pipeline(pre, make(max_iter=10, categorical_features=[0, 1], random_state=0)).fit(X, y)
        sample, rows = X, _cat_rows(X)
    est = pipe[-1] if form == "indices_after_ordinal" else pipe
    assert est.is_categorical_.any()
    assert any(np.any(p.nodes["is_categorical"]) for it in est._predictors for p in it)  # set splits are used
    model = _bundle(pipe, sample, tmp_path, f"hgbc{task}{form}", nullable=True)
    _agree(pipe, model, rows, f"HistGradientBoosting categorical ({form})")


# -- 7. TargetEncoder --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["binary", "multiclass", "continuous"])
@pytest.mark.parametrize("model", ["linear", "hgb"])
def test_target_encoder(target: str, model: str, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.preprocessing import TargetEncoder

    X, y_class, y_value = _shops()
    y = {"binary": (y_class > 0).astype(int), "multiclass": y_class, "continuous": y_value}[target]
    if model == "linear":
        est = LogisticRegression(max_iter=1000) if target != "continuous" else Ridge()
    else:
        est = (HistGradientBoostingClassifier if target != "continuous" else HistGradientBoostingRegressor)(
            max_iter=10, random_state=0)
    pre = ColumnTransformer([("te", TargetEncoder(target_type=target), ["store", "city"]),
                             ("num", SimpleImputer(), ["x"])])
    pipe = make_pipeline(pre, est).fit(X, y)
    enc = pipe[0].named_transformers_["te"]
    # transform (what predict uses) is the fitted encodings_, not fit_transform's cross-fitted values
    assert not np.allclose(enc.transform(X[["store", "city"]]), enc.fit_transform(X[["store", "city"]], y))
    bundle = _bundle(pipe, X, tmp_path, f"te{target}{model}", nullable=True)
    _agree(pipe, bundle, _cat_rows(X), f"TargetEncoder({target}) + {model}")


# -- 8. Voting, Stacking, multi-output regressors, string imputers inside meta-estimators ------------------------

def _mixed_pre() -> ColumnTransformer:
    """String imputer + one-hot and numeric imputer + scaler: what each part of a meta-estimator gets."""
    cat = make_pipeline(SimpleImputer(strategy="constant", fill_value="none"), OneHotEncoder(handle_unknown="ignore"))
    return ColumnTransformer([("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUM),
                              ("cat", cat, ["color", "size"])], sparse_threshold=0.0)


@pytest.mark.parametrize("kind", ["multiclass", "binary"])
@pytest.mark.parametrize("weights", [None, [2.0, 1.0, 0.5]])
@pytest.mark.parametrize("flatten", [True, False])
def test_soft_voting(mix: tuple, kind: str, weights: list[float] | None, flatten: bool, tmp_path: Path) -> None:
    from sklearn.ensemble import VotingClassifier

    X, multi, binary, _ = mix
    y = multi if kind == "multiclass" else binary
    vote = VotingClassifier([("lr", LogisticRegression(max_iter=1000)),
                             ("rf", RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0)),
                             ("tree", make_pipeline(SimpleImputer(), DecisionTreeClassifier(max_depth=4,
                                                                                            random_state=0)))],
                            voting="soft", weights=weights, flatten_transform=flatten)
    pipe = make_pipeline(_mixed_pre(), vote).fit(X, y)
    model = _bundle(pipe, X, tmp_path, f"vote{kind}{flatten}{weights is None}", nullable=True)
    _agree(pipe, model, pd.concat([X, _adversarial_mixed(X)], ignore_index=True), "VotingClassifier(soft)")


@pytest.mark.parametrize("weights", [None, [1.0, 1.0], [0.5, 0.25, 0.25]])
def test_hard_voting_ties_fall_as_sklearn_s(mix: tuple, weights: list[float] | None, tmp_path: Path) -> None:
    """Two voters that disagree tie: the first class of the tally wins, as ``argmax(bincount(...))``. The
    bundle answers labels only, as sklearn has no predict_proba for hard voting."""
    from sklearn.ensemble import VotingClassifier

    from skedge.runtime import SchemaError

    X, multi, _, _ = mix
    parts = [("lr", LogisticRegression(max_iter=1000)), ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
             ("nb", __import__("sklearn.naive_bayes", fromlist=["x"]).GaussianNB())]
    parts = parts[:len(weights)] if weights else parts[:2]
    pipe = make_pipeline(_mixed_pre(), VotingClassifier(parts, voting="hard", weights=weights)).fit(X, multi)
    rows = pd.concat([X, _adversarial_mixed(X)], ignore_index=True)
    votes = np.stack([e.predict(pipe[0].transform(rows)) for e in pipe[-1].estimators_], axis=1)
    assert (votes[:, 0] != votes[:, 1]).sum() >= 10  # the ties are really tested
    model = _bundle(pipe, X, tmp_path, f"hard{len(parts)}{weights is None}", nullable=True)
    np.testing.assert_array_equal(model.predict(rows), pipe.predict(rows))
    assert model.schema.outputs == {"label": "label"}
    with pytest.raises(SchemaError, match="labels only"):
        model.predict_proba(rows.head(2))


@pytest.mark.parametrize("base", ["pipeline_tree", "linear_svc"])
def test_bagging_parts_with_fewer_classes_and_votes(mix: tuple, base: str, tmp_path: Path) -> None:
    """A part that takes no sample_weight (a Pipeline) is fitted on its bootstrap rows alone, so small samples
    leave classes out of it (their columns are placed as sklearn places them); a part with no predict_proba
    votes; each part sees its own feature subset."""
    from sklearn.ensemble import BaggingClassifier
    from sklearn.svm import LinearSVC

    X, multi, _, _ = mix
    y = multi.copy()
    y.iloc[:4] = "rare"  # four rows: most 10 % bootstraps miss it
    tree = make_pipeline(DecisionTreeClassifier(max_depth=4, random_state=0))
    part = tree if base == "pipeline_tree" else LinearSVC()
    pipe = make_pipeline(_mixed_pre(), BaggingClassifier(part, n_estimators=8, max_samples=0.1, max_features=0.7,
                                                         random_state=0)).fit(X, y)
    if base == "pipeline_tree":
        assert any(len(e.classes_) < 4 for e in pipe[-1].estimators_)
    model = _bundle(pipe, X, tmp_path, f"bag{base}", nullable=True)
    _agree(pipe, model, pd.concat([X, _adversarial_mixed(X)], ignore_index=True), f"BaggingClassifier({base})")


def test_voting_regressor_with_a_meta_string_imputer(mix: tuple, tmp_path: Path) -> None:
    """A whole pipeline (string imputer included) as each part of the meta-estimator."""
    from sklearn.ensemble import VotingRegressor

    X, _, _, value = mix
    vote = VotingRegressor([("ridge", make_pipeline(_mixed_pre(), Ridge())),
                            ("rf", make_pipeline(_mixed_pre(), __import__("sklearn.ensemble", fromlist=["x"])
                                                 .RandomForestRegressor(n_estimators=10, max_depth=5,
                                                                        random_state=0)))],
                           weights=[1.0, 3.0]).fit(X, value)
    model = _bundle(vote, X, tmp_path, "voter", nullable=True)
    _agree(vote, model, pd.concat([X, _adversarial_mixed(X)], ignore_index=True), "VotingRegressor")


@pytest.mark.parametrize("passthrough", [False, True])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_stacking(mix: tuple, passthrough: bool, kind: str, tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestRegressor, StackingClassifier, StackingRegressor

    X, multi, binary, value = mix
    if kind == "regression":
        stack: Any = StackingRegressor([("ridge", Ridge()), ("rf", RandomForestRegressor(n_estimators=10, max_depth=5,
                                                                                         random_state=0))],
                                       final_estimator=Ridge(alpha=0.5), passthrough=passthrough, cv=3)
        y = value
    else:
        stack = StackingClassifier([("lr", LogisticRegression(max_iter=1000)),
                                    ("rf", RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0))],
                                   final_estimator=LogisticRegression(max_iter=1000), passthrough=passthrough, cv=3)
        y = multi if kind == "multiclass" else binary
    pipe = make_pipeline(_mixed_pre(), stack).fit(X, y)
    model = _bundle(pipe, X, tmp_path, f"stack{kind}{passthrough}", nullable=True)
    _agree(pipe, model, pd.concat([X, _adversarial_mixed(X)], ignore_index=True), f"Stacking({kind})")


@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("model", ["multioutput_ridge", "forest", "tree"])
def test_multi_output_regressors(mix: tuple, outputs: int, model: str, tmp_path: Path) -> None:
    """A column per output, as sklearn's predict; one row in, the row of values out; batches a column each."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.tree import DecisionTreeRegressor

    from skedge.runtime import BatchScorer

    X, _, _, value = mix
    Y = pd.DataFrame({"v": value, "w": -2 * value + X["b"].to_numpy(), "z": X["d"].to_numpy()}).iloc[:, :outputs]
    est: Any = {"multioutput_ridge": MultiOutputRegressor(Ridge()),
                "forest": RandomForestRegressor(n_estimators=5, max_depth=5, random_state=0),
                "tree": DecisionTreeRegressor(max_depth=5, random_state=0)}[model]
    pipe = make_pipeline(_mixed_pre(), est).fit(X, Y if outputs > 1 or model == "multioutput_ridge" else value)
    path = export(pipe, X, tmp_path, name=f"multi-{model}-{outputs}", targets=("onnx",), nullable=True)
    bundle = load(path)
    rows = pd.concat([X, _adversarial_mixed(X)], ignore_index=True)
    _agree(pipe, bundle, rows, f"multi-output {model}")
    want = np.asarray(pipe.predict(rows.head(1)), dtype=np.float64).reshape(-1)
    one = bundle.predict({k: (None if pd.isna(v) else v) for k, v in rows.iloc[0].to_dict().items()})
    np.testing.assert_allclose(np.asarray(one, dtype=np.float64).reshape(-1), want, rtol=1e-6)
    if outputs > 1:
        scored = BatchScorer.load(path).score(rows)
        assert list(scored) == [f"prediction_{j}" for j in range(outputs)]
        np.testing.assert_allclose(np.column_stack(list(scored.values())), pipe.predict(rows), rtol=1e-6)


# -- Core ML: recorded as unavailable with its reason, never failing the ONNX bundle ------------------------------

def test_default_targets_keep_the_onnx_bundle_and_say_why_core_ml_is_missing(num: tuple, tmp_path: Path) -> None:
    import json

    X, multi, _, _ = num
    pipe = make_pipeline(ColumnTransformer([("bin", Binarizer(threshold=0.0), ["a"]),
                                            ("q", QuantileTransformer(n_quantiles=20), ["b", "c"])]),
                         LogisticRegression(max_iter=1000)).fit(X[NUM], multi)
    path = export(pipe, X[NUM], tmp_path, name="nocoreml")  # default targets
    manifest = json.loads((path / "manifest.json").read_text())
    assert not (path / "model.mlmodel").exists()
    why = manifest["unavailable_targets"]["coreml"]
    assert "Binarizer" in why or "not implemented for Core ML" in why
    _agree(pipe, load(path), X[NUM], "Binarizer + Quantile, default targets")


# -- 9. CountVectorizer / TfidfVectorizer --------------------------------------------------------------------------

_WORDS = ["café", "Café", "naïve", "über", "crème", "brûlée", "good", "bad", "big", "dog", "a", "I", "x", "is",
          "not", "very", "straße", "Ölung", "42", "b2b", "co_op", "e-mail", "ok!", "Zürich", "ñandú", "日本"]


def _reviews(n: int = 240, seed: int = 6) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    docs = [" ".join(rng.choice(_WORDS, rng.integers(0, 9))) for _ in range(n)]
    docs[:4] = ["", "a b c", "Big a dog", "café CAFÉ Café, café."]  # empty; one-letter only; across one; case
    good = np.array([sum(w in d.lower() for w in ("good", "café", "über")) - ("bad" in d) for d in docs])
    X = pd.DataFrame({"review": pd.Series(docs, dtype=object), "x": rng.normal(size=n)})
    return X, pd.Series((good + X["x"] * 0.3 > 0.5).astype(int))


TEXT_CASES: dict[str, Any] = {
    "count": lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).CountVectorizer(),
    "count_binary_bigrams": lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).CountVectorizer(
        binary=True, ngram_range=(1, 2)),
    "count_one_letter_words": lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).CountVectorizer(
        token_pattern=r"(?u)\b\w+\b", lowercase=False),
    "tfidf": lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).TfidfVectorizer(),
    "tfidf_sublinear_bigrams": lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).TfidfVectorizer(
        sublinear_tf=True, ngram_range=(1, 2)),
    "tfidf_l1_no_idf": lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).TfidfVectorizer(
        norm="l1", use_idf=False),
    "tfidf_no_norm_bigrams_only": lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"])
    .TfidfVectorizer(norm=None, ngram_range=(2, 2), min_df=2),
    "count_then_tfidf_transformer": lambda: make_pipeline(
        __import__("sklearn.feature_extraction.text", fromlist=["x"]).CountVectorizer(ngram_range=(1, 2)),
        __import__("sklearn.feature_extraction.text", fromlist=["x"]).TfidfTransformer(sublinear_tf=True)),
    "tfidf_stop_words": lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).TfidfVectorizer(
        stop_words=["is", "not", "very"]),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_text_vectorizers(case: str, tmp_path: Path) -> None:
    X, y = _reviews()
    pipe = make_pipeline(ColumnTransformer([("text", TEXT_CASES[case](), "review"), ("num", "passthrough", ["x"])],
                                           sparse_threshold=0.0),
                         LogisticRegression(max_iter=1000)).fit(X, y)
    vec = pipe[0].named_transformers_["text"]
    vec = vec[0] if hasattr(vec, "steps") else vec
    model = _bundle(pipe, X, tmp_path, f"text{case}")
    new = pd.DataFrame({"review": ["Café über alles", "BIG dog, a big DOG", "never seen words", "", "日本 b2b co_op",
                                   "e-mail ok! ok!", "x" * 50, "naïve\tcrème\nbrûlée"], "x": 0.1})
    rows = pd.concat([X, new], ignore_index=True)
    # the step alone first: the graph's features are sklearn's (count / tf-idf values per vocabulary column)
    assert vec.transform(new["review"]).shape[1] == len(vec.vocabulary_)
    _agree(pipe, model, rows, f"text {case}")


def test_text_vectorizer_refuses_what_it_cannot_translate() -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    X, y = _reviews(60)
    for vec, why in ((CountVectorizer(analyzer="char"), "analyzer='char'"),
                     (CountVectorizer(strip_accents="unicode"), "strip_accents"),
                     (CountVectorizer(stop_words=["is"], ngram_range=(1, 2)), "stop_words with n-grams")):
        pipe = make_pipeline(ColumnTransformer([("text", vec, "review")]), LogisticRegression()).fit(X, y)
        with pytest.raises(ExportError, match=why):
            build(pipe, X, name="badtext", targets=("onnx",))


def test_skedge_converters_take_precedence_over_the_field_and_its_refusals() -> None:
    """The field's converters are wrong for these (DESIGN.md "Coverage"): skedge's own entry is used."""
    from sklearn.ensemble import HistGradientBoostingClassifier, StackingClassifier, VotingClassifier
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import TargetEncoder

    from skedge.exporter.onnx import _table

    for cls in (Binarizer, TargetEncoder, CountVectorizer, TfidfVectorizer, TfidfTransformer, PowerTransformer,
                QuantileTransformer, VotingClassifier, StackingClassifier, TransformedTargetRegressor,
                KNeighborsClassifier, HistGradientBoostingClassifier, FunctionTransformer, SimpleImputer):
        assert _table.who_converts(cls) == ("skedge", ""), cls
        conv = _table.lookup(cls.__new__(cls))
        assert conv is not None and conv.__module__ != "skedge.exporter.onnx.field", cls


# -- support vector regression in double -------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly", "sigmoid", "nu"])
def test_svr_in_double(mix: tuple, kernel: str, tmp_path: Path) -> None:
    """skl2onnx's SVMRegressor runs in float32 (4.5e-4 relative off on a polynomial kernel): skedge's is double.
    Training rows verbatim are the support vectors themselves (the RBF distance 0)."""
    from sklearn.svm import SVR, NuSVR

    X, _, _, value = mix
    est = NuSVR(C=10.0) if kernel == "nu" else SVR(kernel=kernel, degree=2, C=10.0)
    pipe = make_pipeline(_mixed_pre(), est).fit(X, value)
    model = _bundle(pipe, X, tmp_path, f"svr{kernel}", nullable=True)
    rows = pd.concat([X, _adversarial_mixed(X)], ignore_index=True)
    got, want = np.asarray(model.predict(rows)), pipe.predict(rows)
    assert np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))) <= 1e-10
