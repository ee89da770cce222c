"""Batch scoring on Dask: the same scorer as ``skedge predict``, as Dask tasks. Needs ``skedge[dask]``.

    import dask.dataframe as dd
    from skedge.runtime.dask import score
    ddf = dd.read_parquet("s3://bucket/rows/")
    out = score(ddf, "models/penguins/1.0.0")       # a Dask DataFrame: prediction, proba_<class>...
    out.to_parquet("predictions/")

The model is read and hash-checked once, on the client, and travels to each
worker once, as bytes inside a worker plugin (``ModelPlugin``); the plugin checks
the hash again where the bytes land and builds the worker's one session, cached
in ``skedge.runtime._batch`` (an importable module, so every task on that worker
finds it). Tasks carry the model's key only: nothing is re-read per task.
Workers that join later, or replace a dead one, get the plugin from the
scheduler when they register.

Importing ``skedge.runtime`` never imports this module or Dask.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import dask
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, KilledWorker, LocalCluster, as_completed, default_client
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without Dask
    raise ImportError(f"skedge.runtime.dask needs Dask ({exc.name or exc} is missing): "
                      "pip install 'skedge[dask]'") from None

from ._batch import ModelBytes, forget_scorer, installed_scorer, scorer_for
from ._errors import EngineError, SchemaError
from ._jobs import STAGING_PREFIX, Plan, Progress, score_file

__all__ = ["score", "score_files", "connect", "ModelPlugin", "plugin_name"]


def plugin_name(payload: ModelBytes) -> str:
    return f"skedge-model-{payload.key[:16]}"


class ModelPlugin(WorkerPlugin):
    """Carries a model's bytes to every worker and builds the worker's one scorer there."""

    # Registering the same model twice keeps the scorers already built.
    idempotent = True

    def __init__(self, payload: ModelBytes) -> None:
        self.payload = payload
        self.name = plugin_name(payload)

    def setup(self, worker: Any) -> None:
        scorer_for(self.payload)  # checks the sha256 of the bytes that arrived, then builds the session

    def teardown(self, worker: Any) -> None:
        forget_scorer(self.payload.key)


def _as_payload(bundle: str | os.PathLike[str] | ModelBytes, target: str) -> ModelBytes:
    return bundle if isinstance(bundle, ModelBytes) else ModelBytes.read(bundle, target=target)


# -- a Dask DataFrame in, a Dask DataFrame out ------------------------------------

def _default_client() -> Client | None:
    try:
        return default_client()
    except ValueError:  # no distributed client: Dask's local schedulers run in this process
        return None


def _frame(cols: dict[str, Any], index: Any) -> pd.DataFrame:
    return pd.DataFrame(cols, index=index)


def _score_partition(part: pd.DataFrame, model: str | ModelBytes, keep: tuple[str, ...]) -> pd.DataFrame:
    scorer = installed_scorer(model) if isinstance(model, str) else scorer_for(model)
    out = scorer.score(part)
    # .array: the carried column keeps its dtype (nullable ints stay Int64) and is not realigned
    return _frame({**{k: part[k].array for k in keep}, **out}, part.index)


def score(ddf: dd.DataFrame, bundle: str | os.PathLike[str] | ModelBytes, *, target: str = "onnx",
          keep: Sequence[str] = (), client: Client | None = None) -> dd.DataFrame:
    """Score a Dask DataFrame: the outputs as a Dask DataFrame with ``ddf``'s partitions and index.

    Columns are ``prediction``, then ``proba_<class>`` per class (classifiers) or
    ``score`` (anomaly), after the ``keep`` columns carried from ``ddf``. Columns of
    ``ddf`` that the model does not take are ignored. With a distributed client
    (``client``, or the default one) the model reaches the workers through a
    worker plugin; without one, Dask's local schedulers share this process's scorer.
    """
    payload = _as_payload(bundle, target)
    scorer = scorer_for(payload)  # validates the model here, before any task runs, and gives the columns
    keep = tuple(keep)
    missing = [k for k in (*keep, *scorer.schema.names) if k not in ddf.columns]
    if missing:
        raise SchemaError(f"field {missing[0]!r}: the Dask DataFrame has no such column "
                          f"(it has {', '.join(map(str, ddf.columns))})", field=missing[0])
    clash = [k for k in keep if k in scorer.columns]
    if clash:
        raise SchemaError(f"keep column {clash[0]!r} has the name of an output column; rename it",
                          field=clash[0])
    client = client or _default_client()
    ref: str | ModelBytes = payload
    if client is not None:
        client.register_plugin(ModelPlugin(payload), name=plugin_name(payload))
        ref = payload.key
    return ddf.map_partitions(_score_partition, ref, keep, meta=_meta(ddf, scorer, keep))


def _meta(ddf: dd.DataFrame, scorer: Any, keep: tuple[str, ...]) -> pd.DataFrame:
    # Built from one made-up row through the same _frame as real partitions, then emptied:
    # pandas gives an empty object column another dtype than a column holding strings.
    fake = ddf._meta_nonempty.iloc[:1]
    row = {name: np.zeros(1, dtype=col.dtype) for name, col in scorer.empty().items()}
    if "prediction" in row and row["prediction"].dtype == object:  # (multi-output: prediction_0, ...)
        row["prediction"] = np.array([str((scorer.schema.classes or ("",))[0])], dtype=object)
    return _frame({**{k: fake[k].array for k in keep}, **row}, fake.index).iloc[:0]


# -- files in, files out -----------------------------------------------------------

@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client for ``scheduler`` (else Dask's ``scheduler-address`` config, i.e. DASK_SCHEDULER_ADDRESS),
    or for a local cluster of ``workers`` processes with one thread each, closed on exit."""
    address = scheduler or dask.config.get("scheduler-address", None)
    if address:
        if workers is not None:
            raise EngineError(f"--workers sizes a local cluster; the cluster at {address} has its own workers")
        try:
            client = Client(address, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise EngineError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # processes, not threads: a worker that dies takes only its own tasks with it, and the
    # input checks (Python) of one worker do not wait on the GIL of another
    # dashboard_address ":0": the scheduler's HTTP server starts even without a dashboard, and on
    # its default port 8787 it collides (with a warning) with any other cluster on the machine.
    # silence_logs: the workers share this terminal, and their log of a failed task (with its
    # traceback) and of the tasks cancelled after it would bury the one line that names the
    # cause; every failure still reaches the client as an exception.
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def _score_file_task(key: str, src: str, staged: str, fmt: str, keep: tuple[str, ...]) -> int:
    return score_file(installed_scorer(key), Path(src), Path(staged), fmt, keep)


def score_files(payload: ModelBytes, plan: Plan, keep: tuple[str, ...], client: Client,
                progress: Progress | None = None) -> int:
    """Run one task per file of ``plan`` on ``client``'s cluster; return the row count.

    Raises the first task's error (the others are cancelled). A worker that dies
    mid-task is Dask's to handle: the scheduler runs its tasks again elsewhere.
    """
    name = plugin_name(payload)
    client.register_plugin(ModelPlugin(payload), name=name)
    run = plan.staging.name.removeprefix(STAGING_PREFIX)
    # retries=0: a task that raised (a bad row) fails the job at once. A task whose worker died
    # did not fail: the scheduler runs it again elsewhere, up to allowed-failures (3) deaths.
    futures = [client.submit(_score_file_task, payload.key, str(job.src), str(job.staged), job.fmt, keep,
                             key=f"skedge-score-{run}-{i}", pure=False, retries=0)
               for i, job in enumerate(plan.jobs)]
    total = 0
    try:
        for future in as_completed(futures, loop=client.loop):
            rows = int(future.result())
            total += rows
            if progress is not None:
                progress.file_done(rows)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        # leave a shared cluster as it was; a worker that left keeps nothing either
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(name)
    return total


def run_files(payload: ModelBytes, plan: Plan, keep: tuple[str, ...], progress: Progress, *,
              scheduler: str | None = None, workers: int | None = None) -> int:
    """``skedge predict --engine dask``: connect (or start a local cluster), score every file, disconnect."""
    with connect(scheduler, workers) as client:
        try:
            return score_files(payload, plan, keep, client, progress)
        except KilledWorker as exc:
            # the same task killed worker after worker (Dask's allowed-failures): name it, one line
            raise EngineError(f"Dask gave up on a task: {' '.join(str(exc).split())}") from None
