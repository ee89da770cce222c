"""The coverage census in the suite: every pipeline exact against sklearn, or refused for a reason listed for it.

The cases live in tests/exporter/census.py (shared with docs/coverage.md's generator); each is fitted on small
real data, exported with skedge.exporter.export and its bundle compared with sklearn on holdout and adversarial
rows (training rows verbatim, column extremes and ten times beyond, zeros, all missing).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from skedge.exporter import ExportError, build
from skedge.exporter.onnx._table import FIELD, who_converts
from tests.exporter import census

CASES = [c for c in census.CASES() if census.available(c)]


def test_the_census_is_broad() -> None:
    assert len(census.CASES()) >= 40
    assert len({c.family for c in census.CASES()}) >= 10


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_is_exact_or_refused_for_its_listed_reason(case: census.Case) -> None:
    result = census.run_case(case, targets=("onnx",))  # Core ML's column: docs/coverage.md (default targets)
    if result.verdict == "refused":
        assert case.refusals, f"{case.name} must be exact, but skedge refused it: {result.detail}"
        assert any(r.lower() in result.detail.lower() for r in case.refusals), result.detail
        if census.PARITY in result.detail:
            # a parity failure names the measured difference, what failed, and the way out
            assert "max abs diff" in result.message, result.message
            if "Converted by the field's converters" in result.message:
                assert re.search(r"step '\w+' \(\w+, skl2onnx [0-9.]+\)", result.message), result.message
                assert "`skedge supported --target onnx`" in result.message
            else:
                assert "Nearest neighbours (KNeighborsClassifier)" in result.message, result.message
        return
    assert result.verdict == "exact", f"{case.name}: {result.detail}"
    assert result.rows >= 20  # holdout and adversarial rows were compared, not a handful


def test_coverage_md_lists_every_case_with_an_outcome_the_census_accepts() -> None:
    text = census.COVERAGE_MD.read_text()
    verdicts = census.verdicts(text)
    missing = [c.name for c in census.CASES() if c.name not in verdicts]
    assert not missing, f"docs/coverage.md is out of date (run `make coverage`): {missing}"
    for case in census.CASES():
        assert verdicts[case.name] == "exact" or case.refusals, (case.name, verdicts[case.name])


def test_the_field_is_not_trusted_where_it_is_known_wrong() -> None:
    """DESIGN.md's measured traps never reach the field's converter: a skedge converter or a refusal with the reason."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
    from sklearn.preprocessing import Binarizer, Normalizer, TargetEncoder

    for cls in (Binarizer, CountVectorizer, TfidfVectorizer, TfidfTransformer, TargetEncoder, Normalizer,
                LGBMClassifier, LGBMRegressor):
        who, why = who_converts(cls)
        assert who == "skedge" or (who == "refused" and why), (cls, who)


def test_every_field_entry_names_a_class_that_exists() -> None:
    import importlib

    for path, who in FIELD.items():
        module, _, name = path.rpartition(".")
        try:
            mod = importlib.import_module(module)
        except ImportError:
            assert module.split(".")[0] in ("xgboost", "lightgbm"), path  # optional extras only
            continue
        assert isinstance(getattr(mod, name), type), path
        assert who in ("skl2onnx", "onnxmltools")


# -- refusals a person can act on ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y, _ = census.data("iris")
    return X, y


class Squash:
    """A user's own step, unknown to skedge and to skl2onnx."""

    def fit(self, X: object, y: object = None) -> Squash:
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        return np.tanh(np.asarray(X, dtype=float))


def test_an_unknown_step_is_named_and_points_to_skedge_supported(iris: tuple) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    X, y = iris
    pipe = Pipeline([("squash", _Fitted()), ("model", LogisticRegression(max_iter=500))]).fit(X, y)
    with pytest.raises(ExportError) as err:
        build(pipe, X, name="nope", targets=("onnx",))
    text = str(err.value)
    assert text.startswith("step 'squash' (_Fitted) has no ONNX converter.")
    assert "`skedge supported --target onnx`" in text and "register_converter(_Fitted, onnx=...)" in text
    assert max(len(line) for line in text.splitlines()) < 160  # the supported list is a pointer, not a line


class _Fitted(Squash):
    def __sklearn_is_fitted__(self) -> bool:
        return True


def test_a_known_wrong_step_is_refused_with_the_reason_and_a_way_out(iris: tuple,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A REFUSED entry (a class the field converts wrongly and skedge not yet) wins over the field's converter."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from skedge.exporter.onnx import _table

    X, y = iris
    pipe = make_pipeline(PCA(2), LogisticRegression()).fit(X, y)
    monkeypatch.setitem(_table.REFUSED, "sklearn.decomposition.PCA", "measured 0.3 off sklearn on zero rows")
    assert _table.lookup(pipe.steps[0][1]) is None and who_converts(PCA) == ("refused", _table.REFUSED[
        "sklearn.decomposition.PCA"])
    with pytest.raises(ExportError, match=r"^step 'pca' \(PCA\) cannot be exported: measured 0\.3 off sklearn on "
                                          r"zero rows\.\n  Replace the step, or register a converter"):
        build(pipe, X, name="nope", targets=("onnx",))


class Centroids(ClassifierMixin, BaseEstimator):
    """A user's own classifier, with no converter anywhere."""

    def fit(self, X: Any, y: Any) -> Centroids:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.classes_[0])


def test_a_bare_estimator_is_named_by_its_class(iris: tuple) -> None:
    X, y = iris
    with pytest.raises(ExportError, match=r"^Centroids has no ONNX converter\."):
        build(Centroids().fit(X, y), X, name="nope", targets=("onnx",))
    from sklearn.naive_bayes import GaussianNB

    exported = build(GaussianNB().fit(X, y), X, name="bare", targets=("onnx",))
    assert exported.manifest["pipeline"] == ["GaussianNB: GaussianNB"]


def test_a_field_converted_step_is_reproducible_bytes() -> None:
    """skl2onnx's graph name is a UUID and its opset order follows the string hash seed: neither reaches the bytes."""
    import hashlib
    import os
    import subprocess
    import sys

    code = (
        "import hashlib, sys, warnings; warnings.simplefilter('ignore')\n"
        "from sklearn.calibration import CalibratedClassifierCV\n"
        "from sklearn.decomposition import PCA\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.svm import SVC\n"
        "from skedge.exporter import build\n"
        "from tests.exporter.census import data\n"
        "X, y, _ = data('wine')\n"
        "p = make_pipeline(PCA(4), CalibratedClassifierCV(SVC(), ensemble=False)).fit(X, y)\n"
        "sys.stdout.buffer.write(build(p, X, name='r', targets=('onnx',)).files['model.onnx'])\n"
    )
    got = []
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300, check=False,
                             cwd=census.ROOT, env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.returncode == 0, out.stderr.decode()[-2000:]
        got.append(out.stdout)
    assert hashlib.sha256(got[0]).digest() == hashlib.sha256(got[1]).digest()
    assert not re.search(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}", got[0])  # no UUID graph name from skl2onnx


def test_skedge_supported_prints_who_converts_each_class(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from skedge.cli import main

    assert main(["supported", "--json", "--all"]) == 0
    table = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert table["sklearn.decomposition.PCA"]["who"] == "skl2onnx"
    assert table["sklearn.ensemble.RandomForestClassifier"]["who"] == "skedge"
    assert table["xgboost.XGBClassifier"]["who"] == "onnxmltools"
    assert table["lightgbm.sklearn.LGBMClassifier"]["who"] == "skedge"  # exact in double (lgbm.py)
    assert main(["supported", "--target", "coreml"]) == 0
    out = capsys.readouterr().out
    assert "sklearn.linear_model.LogisticRegression" in out and "skedge" in out
    assert "sklearn.decomposition.PCA" in out  # a GLMRegressor for Core ML too
    assert "sklearn.svm.SVC" not in out  # unavailable for Core ML: only listed with --all


@pytest.mark.slow
def test_bench_coverage_quick_pass() -> None:
    """The bench checks its answers against sklearn before timing them; a quick pass writes nothing."""
    import subprocess
    import sys

    pytest.importorskip("xgboost")
    before = (census.ROOT / "docs" / "bench.md").read_bytes()
    out = subprocess.run([sys.executable, str(census.ROOT / "bench" / "bench_coverage.py"), "--quick"],
                         cwd=census.ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| TF-IDF") for r in rows) and any(r.startswith("| StandardScaler + XGB") for r in rows)
    assert all("refused" not in r for r in rows if "XGB" in r), rows
    assert (census.ROOT / "docs" / "bench.md").read_bytes() == before
