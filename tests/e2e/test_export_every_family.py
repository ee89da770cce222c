"""`skedge export pipe.skops` on one pipeline of every census family (issue 12): the CLI path a user takes,
a skops file in, a bundle out that answers like sklearn."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from skedge.cli import main
from skedge.runtime import load
from tests.exporter import census


def _one_per_family() -> list[census.Case]:
    seen: dict[str, census.Case] = {}
    for c in census.CASES():
        # numbers only (a CSV sample keeps them as they are), no optional package, expected exact
        if c.family in seen or c.refusals or c.needs or c.data in ("text", "mixed", "categorical"):
            continue
        seen[c.family] = c
    return list(seen.values())


FAMILIES = _one_per_family()


@pytest.mark.slow
@pytest.mark.parametrize("case", FAMILIES, ids=[c.family for c in FAMILIES])
def test_skedge_export_of_a_skops_file(case: census.Case, tmp_path: Path) -> None:
    import skops.io as sio

    pipe, X, holdout = census._fit(case)
    sio.dump(pipe, tmp_path / "pipe.skops")
    X.to_csv(tmp_path / "sample.csv", index=False)
    # what a user does after reading the refusal: name each type skops does not trust by default
    trust = [a for t in sio.get_untrusted_types(file=tmp_path / "pipe.skops") for a in ("--trust", t)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["export", str(tmp_path / "pipe.skops"), "--sample", str(tmp_path / "sample.csv"),
                     "--name", "fam", "--out", str(tmp_path / "models"), *trust])
    assert code == 0
    model = load(tmp_path / "models" / "fam" / "1.0.0")
    got = np.asarray(model.predict(holdout))
    want = np.asarray(pipe.predict(holdout))
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got.astype(float), want, rtol=1e-5, atol=1e-5)
    else:
        assert got.astype(str).tolist() == want.astype(str).tolist()
