"""Bad input, fuzzed: every row or batch either predicts what sklearn predicts or raises SchemaError
naming the row and the field. Never another exception, never an answer where there should be an error.

The oracle (``_value_ok``) is written from the contract (DESIGN.md "The schema", runtime/_schema.py's
docstring), independently of the runtime's code: it decides from a value alone whether the model can
take it. Answers are checked against the sklearn pipeline itself, never against the runtime.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skedge.runtime import Model, SchemaError

from .conftest import Reference

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- values --------------------------------------------------------------------
finite = st.floats(allow_nan=False, allow_infinity=False)
huge_text = st.integers(50_000, 2_000_000).map(lambda n: "é" * n)
surrogates = st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3)
nested = st.one_of(st.lists(finite, max_size=3), st.dictionaries(st.text(max_size=3), finite, max_size=2),
                   st.tuples(finite), st.lists(st.lists(finite, max_size=2), max_size=2))
numbers = st.one_of(
    finite, st.integers(-(2**70), 2**70), st.none(), st.just(math.nan),
    finite.map(np.float64), st.floats(width=32, allow_nan=False, allow_infinity=False).map(np.float32),
    st.integers(-(2**62), 2**62).map(np.int64), st.integers(-(10**6), 10**6).map(float),
    st.sampled_from([3.4028234e38, 3.4028235677973366e38, -3.4028236e38, 2**128, 1e39, -1e300]),
)
bad_numbers = st.one_of(
    st.sampled_from([math.inf, -math.inf, np.float32("inf"), np.float64("-inf")]),
    st.sampled_from(["39.1", "n/a", "NaN", "", "1e3"]), st.text(max_size=10), huge_text, st.booleans(),
    st.sampled_from([np.True_, Decimal("1.5"), b"3.5", object(), np.array(1.0)]), nested,
    st.integers(min_value=2**1024, max_value=2**1100),
)
categories = st.one_of(
    st.sampled_from(["Biscoe", "Dream", "Torgersen", "female", "male"]), st.none(), st.just(""),
    st.just(math.nan), st.just(np.float64("nan")), st.text(min_size=1, max_size=20), huge_text,
    st.sampled_from(["Biscoe\x00", "biscoe", " Dream", "Torgersen\n"]),
)
bad_categories = st.one_of(finite, st.integers(), st.booleans(), nested, st.binary(min_size=1, max_size=5),
                           surrogates, st.just(object()))


def _any_value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "category":
        return st.one_of(categories, categories, bad_categories)
    return st.one_of(numbers, numbers, bad_numbers)


# What a missing category is fed as (README "In an app"): a string a caller may not pass as a value.
MARKER = "\uffff"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)


def spelled(v: Any) -> Any:
    """A number given for a category field, as the contract spells it: 101 and 101.0 are "101"."""
    if not _is_number(v) or v != v:  # NaN is missing, not a number's text
        return v
    x = float(v) if not isinstance(v, int | np.integer) else None
    if x is None:
        return str(int(v))
    return str(int(x)) if math.isfinite(x) and x.is_integer() else repr(x)


def _value_ok(v: Any, kind: str, cats: tuple[str, ...], nullable: bool, strict: bool) -> bool:
    """Can the model take ``v`` for a field of ``kind``? From the contract, not from the runtime's code."""
    if v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
        return nullable
    if kind == "category":
        if _is_number(v):  # a number is a category spelled as text (issue 10.3); "" is a string (issue 11.4)
            return spelled(v) in cats or not strict
        if not isinstance(v, str) or v == MARKER:
            return False
        if v in cats:
            return True
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return not strict  # unseen: counted under "ignore", refused under "error"
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
        return kind == "boolean" and isinstance(v, bool | np.bool_)
    try:
        x = float(v)
    except OverflowError:
        return False
    with np.errstate(over="ignore"):
        if np.isinf(np.float32(x)):  # models compare in float32; sklearn's trees refuse what overflows it
            return False
    return kind != "integer" or x.is_integer()


def _is_unseen(v: Any, kind: str, cats: tuple[str, ...]) -> bool:
    if kind != "category" or v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
        return False
    return isinstance(spelled(v), str) and spelled(v) not in cats


class _Fields:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.strict = {k for k, v in model.schema.unknown_categories.items() if v == "error"}
        self.spec = {f.name: (f.kind, f.categories or (), f.nullable) for f in model.schema.features}

    def bad(self, row: dict[Any, Any]) -> set[str]:
        """Fields of a row dict that must make the model refuse it."""
        out = {name for name in self.spec if name not in row}
        out |= {str(k) for k in row if k not in self.spec}
        for name, (kind, cats, nullable) in self.spec.items():
            if name in row and not _value_ok(row[name], kind, cats, nullable, name in self.strict):
                out.add(name)
        return out

    def unseen(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in rows:
            for name, (kind, cats, _) in self.spec.items():
                if name in row and _is_unseen(row[name], kind, cats):
                    counts[name] = counts.get(name, 0) + 1
        return counts


def _names(field: str | None, message: str) -> bool:
    """The message names the field: quoted when it is a string key, as it is when it is not (an int key)."""
    return field is not None and (repr(field) in message or field in message)


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    diff = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    return {k: v for k, v in diff.items() if v}


@st.composite
def _rows(draw: st.DrawFn, golden: list[dict[str, Any]], kinds: dict[str, str], *, changes: int = 3,
          keys: bool = True) -> dict[Any, Any]:
    row = dict(draw(st.sampled_from(golden)))
    for name in draw(st.lists(st.sampled_from(sorted(kinds)), max_size=changes, unique=True)):
        row[name] = draw(_any_value(kinds[name]))
    if keys and draw(st.integers(0, 9)) == 0:
        del row[draw(st.sampled_from(sorted(row, key=repr)))]
    if keys and draw(st.integers(0, 9)) == 0:
        row[draw(st.one_of(st.text(max_size=8), st.integers()).filter(lambda k: k not in kinds))] = 1.0
    return row


def _check_answer(model: Model, ref: Reference, rows: list[dict[str, Any]], got_proba: np.ndarray,
                  got_labels: Any) -> None:
    want = ref.predict_proba(rows)
    np.testing.assert_allclose(got_proba, want, rtol=0, atol=1e-5)  # the parity contract
    assert [str(x) for x in np.atleast_1d(got_labels)] == [str(x) for x in ref.predict(rows)]


# -- one row -------------------------------------------------------------------
def _one_row_case(model: Model, ref: Reference, row: dict[Any, Any]) -> None:
    fields = _Fields(model)
    bad = fields.bad(row)
    before = model.unseen_categories
    try:
        proba = model.predict_proba(row)
    except SchemaError as exc:
        assert bad, f"a valid row was refused: {exc}"
        assert exc.row == 0, exc
        assert exc.field in bad, f"blamed {exc.field!r}, the bad fields are {sorted(bad)}: {exc}"
        assert str(exc).startswith("row 0, field ") and _names(exc.field, str(exc)), exc
        assert model.unseen_categories == before, "a refused row must not be counted"
        event("refused")
        return
    event("answered")
    assert not bad, f"answered {proba} for a row with bad fields {sorted(bad)}"
    assert _delta(model.unseen_categories, before) == fields.unseen([row])
    _check_answer(model, ref, [row], proba[None, :], model.predict(row))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_one_row_predicts_like_sklearn_or_names_the_field(penguins_model: Model, penguins_reference: Reference,
                                                           penguins_golden: dict[str, Any], data: Any) -> None:
    kinds = {f.name: f.kind for f in penguins_model.schema.features}
    row = data.draw(_rows(penguins_golden["rows"], kinds))
    _one_row_case(penguins_model, penguins_reference, row)


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_strict_model_refuses_unseen_categories_like_sklearn(strict_bundle: Any, strict_reference: Reference,
                                                             penguins_golden: dict[str, Any], data: Any) -> None:
    from skedge.runtime import load

    model = load(strict_bundle)
    assert set(model.schema.unknown_categories.values()) == {"error"}
    kinds = {f.name: f.kind for f in model.schema.features if f.kind == "category"}
    row = data.draw(_rows(penguins_golden["rows"], kinds, changes=2, keys=False))
    _one_row_case(model, strict_reference, row)


@pytest.mark.parametrize("rows", [None, 3.5, "island", b"rows", object(), [[1, 2]], ["not a row"], [None]])
def test_what_is_not_rows_is_refused(penguins_model: Model, rows: Any) -> None:
    with pytest.raises(SchemaError, match="expected a dict"):
        penguins_model.predict(rows)


# -- batches -------------------------------------------------------------------
def _forms(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """The same batch as the runtime accepts it: rows, a dict of columns, a DataFrame of object columns
    (so pandas' dtype inference does not change what a value is)."""
    forms: dict[str, Any] = {"rows": rows}
    if all(set(r) == set(names) for r in rows):
        cols = {n: [r[n] for r in rows] for n in names}
        forms["columns"] = cols
        forms["frame"] = pd.DataFrame({n: pd.Series(cols[n], dtype=object) for n in names})
        # pandas' text dtype where every value is text or missing (the runtime factorizes those columns)
        forms["text frame"] = pd.DataFrame({n: pd.Series(cols[n], dtype="str" if _all_text(cols[n]) else object)
                                            for n in names})
    return forms


def _all_text(values: list[Any]) -> bool:
    """Every value a str (that UTF-8 can store: pandas' text dtype cannot hold lone surrogates) or missing."""
    def text(v: Any) -> bool:
        try:
            return isinstance(v, str) and bool(v.encode("utf-8") or True)
        except UnicodeEncodeError:
            return False
    return any(isinstance(v, str) for v in values) and all(
        text(v) or v is None or (isinstance(v, float) and v != v) for v in values)


def _batch_case(model: Model, ref: Reference, rows: list[dict[str, Any]]) -> None:
    fields = _Fields(model)
    names = model.schema.names
    bad_pairs = {(i, f) for i, r in enumerate(rows) for f in fields.bad(r)}
    for form, batch in _forms(rows, names).items():
        before = model.unseen_categories
        try:
            proba = model.predict_proba(batch)
        except SchemaError as exc:
            assert rows, f"{form}: an empty batch was refused: {exc}"
            assert bad_pairs, f"{form}: a valid batch was refused: {exc}"
            assert (exc.row, exc.field) in bad_pairs, f"{form}: blamed row {exc.row} field {exc.field!r}: {exc}"
            assert str(exc).startswith(f"row {exc.row}, field ") and _names(exc.field, str(exc)), exc
            assert model.unseen_categories == before
            event(f"refused as {form}")
            continue
        event(f"answered as {form}")
        assert not bad_pairs, f"{form}: answered for a batch with bad (row, field) {sorted(bad_pairs)[:3]}"
        assert proba.shape == (len(rows), len(model.classes or ()))
        if not rows:  # empty in, empty out (issue 11.5)
            continue
        assert _delta(model.unseen_categories, before) == fields.unseen(rows)
        _check_answer(model, ref, rows, proba, model.predict(batch))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_batches_predict_like_sklearn_or_name_row_and_field(penguins_model: Model, penguins_reference: Reference,
                                                            penguins_golden: dict[str, Any], data: Any) -> None:
    kinds = {f.name: f.kind for f in penguins_model.schema.features}
    golden = penguins_golden["rows"]
    rows = [dict(r) for r in data.draw(st.lists(st.sampled_from(golden), max_size=30))]
    for _ in range(data.draw(st.integers(0, 3)) if rows else 0):  # a few rows changed, possibly made bad
        i = data.draw(st.integers(0, len(rows) - 1))
        rows[i] = data.draw(_rows([rows[i]], kinds, changes=2, keys=data.draw(st.booleans())))
    _batch_case(penguins_model, penguins_reference, rows)


@pytest.mark.parametrize("batch", [[], (), iter([]), {"island": []}, "frame"])
def test_empty_batches_give_empty_answers(penguins_model: Model, batch: Any) -> None:
    if batch == "frame":
        batch = pd.DataFrame({n: pd.Series([], dtype=object) for n in penguins_model.schema.names})
    elif isinstance(batch, dict):
        batch = {n: [] for n in penguins_model.schema.names}
    labels = penguins_model.predict(batch if not isinstance(batch, type(iter([]))) else iter([]))
    assert isinstance(labels, np.ndarray) and labels.shape == (0,) and labels.dtype == object
    proba = penguins_model.predict_proba([] if isinstance(batch, type(iter([]))) else batch)
    assert proba.shape == (0, 3) and proba.dtype == np.float64


def test_an_empty_batch_with_a_field_missing_is_still_refused(penguins_model: Model) -> None:
    with pytest.raises(SchemaError, match="field 'island': missing column"):
        penguins_model.predict({n: [] for n in penguins_model.schema.names if n != "island"})


@pytest.fixture(scope="module")
def ten_thousand(penguins_golden: dict[str, Any]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    golden = penguins_golden["rows"]
    return [dict(golden[i]) for i in rng.integers(0, len(golden), 10_000)]


@pytest.mark.slow
@settings(FUZZ, max_examples=12)
@given(data=st.data())
def test_one_bad_row_in_ten_thousand_is_named(penguins_model: Model, ten_thousand: list[dict[str, Any]],
                                              data: Any) -> None:
    features = penguins_model.schema.features
    at = data.draw(st.integers(0, len(ten_thousand) - 1))
    f = data.draw(st.sampled_from(features))
    bad = data.draw((bad_categories if f.kind == "category" else bad_numbers)
                    .filter(lambda v: not _value_ok(v, f.kind, f.categories or (), True, False)))
    rows = list(ten_thousand)
    rows[at] = {**rows[at], f.name: bad}
    for form, batch in _forms(rows, penguins_model.schema.names).items():
        with pytest.raises(SchemaError) as info:
            penguins_model.predict(batch)
        assert (info.value.row, info.value.field) == (at, f.name), f"{form}: {info.value}"
        assert f"row {at}, field {f.name!r}" in str(info.value)


@pytest.mark.slow
def test_ten_thousand_good_rows_answer_like_sklearn_in_every_form(penguins_model: Model,
                                                                   penguins_reference: Reference,
                                                                   ten_thousand: list[dict[str, Any]]) -> None:
    want = penguins_reference.predict_proba(ten_thousand)
    names = penguins_model.schema.names
    natural = pd.DataFrame(ten_thousand)[names]  # pandas' own dtypes: float64 with NaN, str/object, int64
    nullable = natural.convert_dtypes()  # Float64/Int64/string with pd.NA
    for form, batch in {**_forms(ten_thousand, names), "natural frame": natural, "nullable frame": nullable}.items():
        np.testing.assert_allclose(penguins_model.predict_proba(batch), want, rtol=0, atol=1e-5, err_msg=form)


def test_error_messages_say_row_field_expected_and_got(penguins_model: Model,
                                                      penguins_golden: dict[str, Any]) -> None:
    rows = [dict(r) for r in penguins_golden["rows"][:5]]
    rows[3]["bill_length_mm"] = "n/a"
    with pytest.raises(SchemaError) as info:
        penguins_model.predict(rows)
    assert str(info.value) == "row 3, field 'bill_length_mm': expected a finite number, got 'n/a' (str)"
    rows[3]["bill_length_mm"] = "é" * 1_000_000
    with pytest.raises(SchemaError) as info:
        penguins_model.predict(rows)
    assert len(str(info.value)) < 200, "a huge value must not be copied into the message"


def test_unseen_categories_are_counted_and_answered_like_sklearn(penguins_bundle: Any,
                                                                 penguins_reference: Reference,
                                                                 penguins_golden: dict[str, Any]) -> None:
    from skedge.runtime import load

    model = load(penguins_bundle)  # its own counters
    assert model.schema.unknown_categories == {"island": "ignore", "sex": "ignore"}
    rows = [{**r, "island": "Atlantis"} for r in penguins_golden["rows"][:40]]
    rows[5]["sex"] = "unknown"
    _check_answer(model, penguins_reference, rows, model.predict_proba(rows), model.predict(rows))
    model.predict(rows[0])
    assert model.unseen_categories == {"island": 40 + 40 + 1, "sex": 1 + 1}
