"""Baselines, gain gates, interval gates and slices, through the trainer's own ``fit`` (no export: fast).

References: sklearn.metrics on the rows of each slice picked by hand from the holdout; a model that always
answers the majority class (a tree that cannot split) for the gain gate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from skedge.runtime import ConfigError, GateError
from skedge.trainer import load_config
from skedge.trainer.train import fit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FOREST = 'estimator = "random_forest"\nparams = { n_estimators = 20 }'
# a tree whose leaves need more rows than there are: it never splits, so it always answers the majority class
CONSTANT = 'estimator = "decision_tree"\nparams = { min_samples_leaf = 100000 }'


def _fit(tmp_path: Path, model: str, evaluation: str, target: str = "species") -> tuple[Any, dict[str, Any]]:
    p = tmp_path / "c.toml"
    p.write_text(f"""
name = "ev"
seed = 3
[data]
path = "{EXAMPLES / 'penguins.csv'}"
target = "{target}"
[model]
{model}
[evaluation]
{evaluation}
""")
    return fit(load_config(p))


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    return _fit(tmp_path_factory.mktemp("forest"), FOREST,
                'slices = ["island", "sex", "bill_length_mm"]\nslice_min_rows = 20\n'
                "[evaluation.gates]\naccuracy_gain_over_dummy = 0.3\n")


def test_a_constant_majority_model_meets_an_accuracy_gate_but_fails_the_gain_gate(tmp_path: Path) -> None:
    # the story of the issue: the majority class is 44 % of the holdout, so accuracy >= 0.4 is met by a model
    # that always answers it; a gain over the baseline is not
    pipe, info = _fit(tmp_path, CONSTANT, "[evaluation.gates]\naccuracy = 0.4\n")
    assert len(set(pipe.predict(info["holdout"]))) == 1
    with pytest.raises(GateError, match=r"accuracy_gain_over_dummy = 0\.0000 \(over the dummy baseline\) is "
                                        r"below the minimum 0\.05; no bundle was written"):
        _fit(tmp_path, CONSTANT, "[evaluation.gates]\naccuracy = 0.4\naccuracy_gain_over_dummy = 0.05\n")
    # over the better baseline: the logistic regression, far ahead of a constant answer
    with pytest.raises(GateError, match=r"accuracy_gain_over_baseline = -0\.\d+ \(over the linear baseline\) is "
                                        r"below the minimum 0\.05"):
        _fit(tmp_path, CONSTANT, "[evaluation.gates]\naccuracy_gain_over_baseline = 0.05\n")


def test_a_real_model_passes_the_gain_gate_and_its_gain_is_the_paired_difference(
        forest: tuple[Any, dict[str, Any]]) -> None:
    pipe, info = forest
    ev = info["evaluation"]
    y = info["holdout_target"]
    majority = y.value_counts().idxmax()
    dummy_acc = float(np.mean(y == majority))  # what always answering the majority class scores
    model_acc = skm.accuracy_score(y, pipe.predict(info["holdout"]))
    assert ev.baselines["dummy"]["metrics"]["accuracy"] == pytest.approx(dummy_acc)
    gain = ev.gains["accuracy_gain_over_dummy"]
    assert gain["value"] == pytest.approx(model_acc - dummy_acc) and gain["value"] > 0.3
    lo, hi = gain["interval"]
    assert lo <= gain["value"] <= hi
    # the linear baseline is a logistic regression over the same feature layer, fitted on the same rows
    linear = ev.baselines["linear"]
    assert "LogisticRegression" in linear["model"] and 0.9 < linear["metrics"]["accuracy"] <= 1.0
    best = max(("dummy", "linear"), key=lambda b: ev.baselines[b]["metrics"]["accuracy"])
    assert ev.gains["accuracy_gain_over_baseline"]["baseline"] == best


def test_an_error_gain_is_positive_when_the_model_errs_less(tmp_path: Path) -> None:
    pipe, info = _fit(tmp_path, 'estimator = "ridge"', "[evaluation.gates]\nmae_gain_over_dummy = 200.0\n",
                      target="body_mass_g")
    ev, y = info["evaluation"], info["holdout_target"].to_numpy(dtype=float)
    mae = skm.mean_absolute_error(y, pipe.predict(info["holdout"]))
    assert ev.gains["mae_gain_over_dummy"]["value"] == pytest.approx(ev.baselines["dummy"]["metrics"]["mae"] - mae)
    with pytest.raises(GateError, match="mae_gain_over_dummy = .* is below the minimum 2000.0"):
        _fit(tmp_path, 'estimator = "ridge"', "[evaluation.gates]\nmae_gain_over_dummy = 2000.0\n",
             target="body_mass_g")


def test_gate_on_the_interval_fails_where_the_value_passes(tmp_path: Path) -> None:
    stump = 'estimator = "decision_tree"\nparams = { max_depth = 1 }'
    _, info = _fit(tmp_path, stump, "")
    ev = info["evaluation"]
    value, (lo, _) = ev.metrics["accuracy"], ev.intervals["accuracy"]
    assert lo < value
    bound = round((lo + value) / 2, 4)
    _fit(tmp_path, stump, f"[evaluation.gates]\naccuracy = {bound}\n")  # the value meets it
    with pytest.raises(GateError, match=r"gated on its lower end .* is below the minimum"):
        _fit(tmp_path, stump, f'gate_on = "interval"\n[evaluation.gates]\naccuracy = {bound}\n')
    with pytest.raises(GateError, match=r"log_loss = .*gated on its upper end"):
        _fit(tmp_path, stump, f'gate_on = "interval"\n[evaluation.gates]\n'
                              f'log_loss = {round(ev.metrics["log_loss"] + 1e-4, 4)}\n')


# one island holds one species: sklearn's reference warns about it, and still answers
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
def test_slice_metrics_equal_sklearn_on_each_slice(forest: tuple[Any, dict[str, Any]]) -> None:
    pipe, info = forest
    X, y = info["holdout"].reset_index(drop=True), info["holdout_target"].reset_index(drop=True)
    pred, proba = pipe.predict(X), pipe.predict_proba(X)
    columns = info["evaluation"].slices
    island = {s["slice"]: s for s in columns["island"]["slices"]}
    assert set(island) == set(X["island"].dropna())
    for value, s in island.items():
        rows = (X["island"] == value).to_numpy()
        assert s["rows"] == rows.sum() and s["gated"] == (rows.sum() >= 20)
        assert s["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y[rows], pred[rows]))
        assert s["metrics"]["f1_macro"] == pytest.approx(skm.f1_score(y[rows], pred[rows], average="macro"))
        assert s["metrics"]["log_loss"] == pytest.approx(skm.log_loss(y[rows], proba[rows], labels=pipe.classes_))
        assert s["metrics"]["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y[rows], pred[rows]))
        lo, hi = s["intervals"]["log_loss"]
        assert lo <= s["metrics"]["log_loss"] <= hi
    sex = {s["slice"]: s["rows"] for s in columns["sex"]["slices"]}
    assert sex.pop("(missing)") == X["sex"].isna().sum() and sex == X["sex"].value_counts().to_dict()
    # numbers: quartile bins of the training rows; every holdout row in exactly one
    bins = columns["bill_length_mm"]["slices"]
    edges = np.quantile(info["train"]["bill_length_mm"].dropna(), [0.25, 0.5, 0.75])
    assert [b["slice"] for b in bins[:4]] == [f"< {edges[0]:.4g}", f"[{edges[0]:.4g}, {edges[1]:.4g})",
                                              f"[{edges[1]:.4g}, {edges[2]:.4g})", f"≥ {edges[2]:.4g}"]
    assert sum(b["rows"] for b in bins) == len(X)
    first = (X["bill_length_mm"] < edges[0]).to_numpy()
    assert bins[0]["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y[first], pred[first]))


def test_the_worst_slice_is_named_and_slice_gates_skip_small_slices(tmp_path: Path) -> None:
    stump = 'estimator = "decision_tree"\nparams = { max_depth = 2 }'
    _, info = _fit(tmp_path, stump, 'slices = ["island"]\nslice_min_rows = 20\n')
    table = info["evaluation"].slices["island"]
    gated = [s for s in table["slices"] if s["gated"]]
    small = [s for s in table["slices"] if not s["gated"]]
    assert gated and small and all(s["rows"] < 20 for s in small)
    worst = min(gated, key=lambda s: (s["metrics"]["accuracy"], -s["metrics"]["log_loss"]))
    assert table["worst"] == worst["slice"]
    bound = round(worst["metrics"]["accuracy"] + 0.001, 3)
    with pytest.raises(GateError, match=f"on the slice island = {worst['slice']} \\({worst['rows']} rows\\)"):
        _fit(tmp_path, stump, f'slices = ["island"]\nslice_min_rows = 20\n[evaluation.slice_gates]\naccuracy = {bound}')
    # the same bound with every slice under the minimum count: reported, not gated
    _fit(tmp_path, stump, f'slices = ["island"]\nslice_min_rows = 500\n[evaluation.slice_gates]\naccuracy = {bound}')


@pytest.mark.parametrize("evaluation,message", [
    ("[evaluation.gates]\naccuracy_gain_over_dumy = 0.1", "unknown metric 'accuracy_gain_over_dumy'; gates take"),
    ("[evaluation.gates]\nroc_auc = 1.5", r"a gate on roc_auc must lie in \[0.0, 1.0\], got 1.5"),
    ("[evaluation.gates]\naccuracy_gain_over_linear = 1.5", "a gate on accuracy_gain_over_linear must lie in"),
    ("[evaluation.slice_gates]\naccuracy = 0.9", "slice_gates needs evaluation.slices"),
    ('slices = ["island"]\n[evaluation.slice_gates]\naccuracy_gain_over_dummy = 0.1',
     "unknown metric 'accuracy_gain_over_dummy'"),
    ('gate_on = "lower"', "gate_on"),
    ('slices = ["island", "island"]', "names a column twice"),
])
def test_evaluation_config_errors_are_one_line(tmp_path: Path, evaluation: str, message: str) -> None:
    p = tmp_path / "c.toml"
    p.write_text(f'name = "e"\n[data]\npath = "x.csv"\ntarget = "species"\n[model]\nestimator = "ridge"\n'
                 f"[evaluation]\n{evaluation}\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_config(p)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("model,evaluation,message", [
    (FOREST, "[evaluation.gates]\nr2_gain_over_dummy = 0.1",
     "evaluation.gates.r2_gain_over_dummy: not a metric of classification; expected one of accuracy"),
    (FOREST, 'slices = ["islnd"]', "evaluation.slices: 'islnd' is not a feature column; features: "),
])
def test_gates_of_another_task_and_unknown_slice_columns_are_one_line(
        tmp_path: Path, model: str, evaluation: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        _fit(tmp_path, model, evaluation)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def small_models() -> dict[str, Any]:
    """A classifier and a regressor with their baselines on a synthetic split, scored by evaluate_all."""
    from sklearn.datasets import make_classification, make_regression
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    from skedge.trainer.evaluate import evaluate_all
    from skedge.trainer.intervals import Bootstrap

    Xc, yc = make_classification(300, 6, n_informative=4, n_classes=3, random_state=0)
    Xr, yr = make_regression(300, 6, noise=10.0, random_state=0)
    out = {}
    for task, X, y, model, dummy, linear in (
            ("classification", Xc, yc.astype(str), DecisionTreeClassifier(max_depth=3, random_state=0),
             DummyClassifier(strategy="prior"), LogisticRegression(max_iter=1000)),
            ("regression", Xr, yr, DecisionTreeRegressor(max_depth=3, random_state=0), DummyRegressor(),
             Ridge())):
        fitted = [m.fit(X[:200], y[:200]) for m in (model, dummy, linear)]
        out[task] = evaluate_all(task, fitted[0], X[200:], y[200:], baselines={"dummy": fitted[1], "linear": fitted[2]},
                                 bootstrap=Bootstrap(resamples=200, seed=0))
    return out


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_metric_is_a_gate_with_its_direction(task: str, small_models: dict[str, Any]) -> None:
    from skedge.trainer.evaluate import LOWER_IS_BETTER, METRICS, check_gates, describe_gates

    ev = small_models[task]
    for name in METRICS[task]:
        value = ev.metrics[name]
        lower = name in LOWER_IS_BETTER
        assert describe_gates({name: 1.0}) == {name: {"max" if lower else "min": 1.0}}
        check_gates(task, ev.metrics, {name: value}, ev)  # met exactly at its value
        worse = value + (-1 if lower else 1) * (abs(value) * 1e-3 + 1e-6)  # a bound just out of reach
        with pytest.raises(GateError, match=f"{name} = .* is {'above the maximum' if lower else 'below the minimum'}"):
            check_gates(task, ev.metrics, {name: worse}, ev)
        gain = ev.gains[f"{name}_gain_over_linear"]
        base = ev.baselines["linear"]["metrics"][name]
        assert gain["value"] == pytest.approx((base - value) if lower else (value - base))
        assert gain["interval"][0] <= gain["value"] <= gain["interval"][1]
