"""Safe under load: one loaded model serves many threads at once, and every answer equals the serial one.

The serial answers are themselves checked against sklearn's (golden.json), so "equal to serial" is
"equal to sklearn" too. The mix covers every path a call can take: the one-row fast path, the checked
one-row path (missing values, unseen categories), small batches, and batches large enough to be split
across the batch pool.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skedge.runtime import Model, load
from skedge.runtime._model import BATCH_THREADS_FROM

THREADS = 8


def _tasks(golden: dict[str, Any]) -> list[tuple[str, str, Any]]:
    rows = golden["rows"]
    big = [rows[i % len(rows)] for i in range(3 * BATCH_THREADS_FROM + 17)]  # split across the pool
    unseen = [{**r, "island": "Atlantis"} for r in rows[:25]]
    missing = [{**r, "sex": None, "bill_length_mm": None} for r in rows[:25]]
    tasks: list[tuple[str, str, Any]] = []
    for i, r in enumerate(rows[:300]):
        tasks.append((f"row {i}", "predict", r))
        tasks.append((f"proba row {i}", "predict_proba", r))
    for i, r in enumerate(unseen + missing):
        tasks.append((f"checked row {i}", "predict_proba", r))
    tasks += [("golden", "predict_proba", rows), ("golden labels", "predict", rows),
              ("big", "predict_proba", big), ("big labels", "predict", big),
              ("unseen batch", "predict", unseen), ("outputs", "predict_outputs", rows[:100])]
    return tasks


def _run(model: Model, task: tuple[str, str, Any]) -> Any:
    _, method, arg = task
    return getattr(model, method)(arg)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


@pytest.fixture()
def model(penguins_bundle: Path) -> Model:
    return load(penguins_bundle)  # its own unseen-category counters


@pytest.mark.slow
def test_many_threads_get_the_serial_answers(model: Model, penguins_golden: dict[str, Any]) -> None:
    tasks = _tasks(penguins_golden)
    serial = {t[0]: _run(model, t) for t in tasks}
    # the serial answers are sklearn's (labels exact, probabilities within the parity bound)
    expected = penguins_golden["expected"]
    np.testing.assert_allclose(serial["golden"], expected["probabilities"], rtol=0, atol=1e-5)
    assert [str(x) for x in serial["golden labels"]] == [str(x) for x in expected["label"]]
    assert [serial[f"row {i}"] for i in range(300)] == [str(x) for x in expected["label"][:300]]
    counted_serial = model.unseen_categories

    results: dict[int, dict[str, Any]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(k: int) -> None:
        order = list(tasks)
        random.Random(k).shuffle(order)  # every thread walks the paths in its own order
        try:
            start.wait()
            results[k] = {t[0]: _run(model, t) for t in order}
        except BaseException as exc:  # noqa: B036 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert sorted(results) == list(range(THREADS))
    for k, got in results.items():
        wrong = [name for name in serial if not _equal(got[name], serial[name])]
        assert not wrong, f"thread {k}: {len(wrong)} answers differ from the serial ones, e.g. {wrong[:3]}"
    # counters are exact under contention: every thread counted what the serial pass counted
    assert model.unseen_categories == {k: v * (THREADS + 1) for k, v in counted_serial.items()}
    assert counted_serial == _unseen_in(tasks, model) and counted_serial["island"] >= 50


def _unseen_in(tasks: list[tuple[str, str, Any]], model: Model) -> dict[str, int]:
    """Category values outside training, counted from the tasks themselves."""
    known = {f.name: set(f.categories or ()) for f in model.schema.features if f.kind == "category"}
    counts: dict[str, int] = {}
    for _, _, arg in tasks:
        for row in arg if isinstance(arg, list) else [arg]:
            for name, cats in known.items():
                v = row.get(name)
                if isinstance(v, str) and v not in cats:  # "" too: a string, not a missing value (issue 11.4)
                    counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.mark.slow
def test_a_split_batch_answers_bit_for_bit_like_its_rows(penguins_bundle: Path,
                                                        penguins_golden: dict[str, Any]) -> None:
    rows = penguins_golden["rows"]
    big = [rows[i % len(rows)] for i in range(4 * BATCH_THREADS_FROM + 3)]
    split = load(penguins_bundle)
    whole = load(penguins_bundle, threads=1)
    by_rows = np.array([whole.predict_proba(r) for r in rows])
    got = split.predict_proba(big)
    assert np.array_equal(got, whole.predict_proba(big))
    assert np.array_equal(got, by_rows[np.arange(len(big)) % len(rows)])
    assert list(split.predict(big)) == list(whole.predict(big))


def test_threads_must_be_positive(penguins_bundle: Path) -> None:
    with pytest.raises(ValueError, match="threads must be at least 1"):
        load(penguins_bundle, threads=0)
