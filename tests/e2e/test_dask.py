"""Batch scoring on Dask: the same outputs as one process, on a local cluster and on a user's cluster.

The "user's cluster" is a `dask scheduler` and `dask worker` processes started from the venv on
127.0.0.1 with ports the OS picks, as separate processes, torn down after each use. The CLI runs
as a subprocess, as a nightly job would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skedge.runtime import BatchScorer, BundleError
from skedge.runtime._batch import ModelBytes

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PENGUINS = ROOT / "examples" / "penguins.csv"


# -- data ----------------------------------------------------------------------------

def _write_dataset(path: Path, files: int, rows: int, seed: int) -> Path:
    """``files`` Parquet files of jittered penguins with an id, some missing values, several row groups."""
    rng = np.random.default_rng(seed)
    src = pd.read_csv(PENGUINS)
    path.mkdir(parents=True)
    for i in range(files):
        df = src.iloc[rng.integers(0, len(src), rows)].reset_index(drop=True)
        for c in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
            df[c] = (df[c] * (1 + rng.normal(0, 0.02, rows))).round(3)
        df.loc[rng.random(rows) < 0.01, "sex"] = None
        df.insert(0, "id", np.arange(rows) + i * 1_000_000)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path / f"part-{i:04d}.parquet",
                       row_group_size=max(rows // 3, 1))
    return path


def _local(bundle: Path, data: Path | str, out: Path) -> None:
    """The single-process reference: `skedge predict` with the local engine, in this process."""
    from skedge.cli import main

    assert main(["predict", str(bundle), "--input", str(data), "--output", str(out), "--keep", "id"]) == 0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("dask") / "data", files=8, rows=6_000, seed=1)


@pytest.fixture(scope="module")
def reference(penguins_bundle: Path, dataset: Path) -> Path:
    out = dataset.parent / "reference"
    _local(penguins_bundle, dataset, out)
    return out


def assert_same_outputs(got: Path, ref: Path, data: Path) -> None:
    """Every output file equals the single-process one row by row, floats bit for bit, ids in input order."""
    names = sorted(p.name for p in data.iterdir())
    assert sorted(p.name for p in got.iterdir()) == names  # one output per input, nothing else left behind
    assert sorted(p.name for p in ref.iterdir()) == names
    for name in names:
        a, b = pq.read_table(got / name), pq.read_table(ref / name)
        assert a.schema == b.schema, name
        ids = pq.read_table(data / name, columns=["id"]).column("id").to_pylist()
        assert a.column("id").to_pylist() == b.column("id").to_pylist() == ids, name
        assert a.column("prediction").to_pylist() == b.column("prediction").to_pylist(), name
        for col in b.column_names[2:]:
            x, y = a.column(col).to_numpy(), b.column(col).to_numpy()
            assert x.dtype == y.dtype == np.float64
            np.testing.assert_array_equal(x.view(np.int64), y.view(np.int64), err_msg=f"{name} {col}")


def test_reference_predictions_line_up_with_their_rows(reference: Path, dataset: Path) -> None:
    # Not the model against itself: the species column was never given to the model. If rows were
    # reordered or shifted on the way, accuracy would fall to chance (about 0.4).
    for name in ("part-0000.parquet", "part-0007.parquet"):
        truth = pq.read_table(dataset / name, columns=["species"]).column("species").to_pylist()
        pred = pq.read_table(reference / name, columns=["prediction"]).column("prediction").to_pylist()
        assert np.mean(np.array(truth) == np.array(pred)) > 0.9


# -- a cluster of separate processes ---------------------------------------------------

@dataclass
class Cluster:
    address: str
    workers: dict[str, subprocess.Popen[bytes]]
    logs: Path


def _wait(what: str, ok: object, timeout: float, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok() if callable(ok) else ok:  # type: ignore[operator]
            return
        time.sleep(0.05)
    tails = "\n".join(f"--- {f.name}\n{f.read_text()[-2000:]}" for f in sorted(logs.glob("*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


@contextmanager
def dask_cluster(tmp: Path, n_workers: int = 2) -> Iterator[Cluster]:
    """`dask scheduler` and `n_workers` x `dask worker` (one thread, no nanny) on 127.0.0.1, random ports."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(tmp / f"{name}.log", "wb") as log:
            p = subprocess.Popen([str(BIN / "dask"), *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
                                 env=env)
        procs.append(p)
        return p

    try:
        sched_file = tmp / "scheduler.json"
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(sched_file))
        _wait("the scheduler", sched_file.exists, 60, tmp)
        address = json.loads(sched_file.read_text())["address"]
        workers = {f"w{i}": start(f"w{i}", "worker", address, "--name", f"w{i}", "--nthreads", "1",
                                  "--no-nanny", "--no-dashboard", "--host", "127.0.0.1")
                   for i in range(n_workers)}
        _wait("the workers", lambda: all("Registered to" in (tmp / f"{w}.log").read_text() for w in workers),
              60, tmp)
        yield Cluster(address, workers, tmp)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with dask_cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return subprocess.run([str(BIN / "skedge"), *args], capture_output=True, text=True, cwd=ROOT,
                          env={**base, **(env or {})}, timeout=timeout)


# -- the same answers ----------------------------------------------------------------------

def test_local_dask_cluster_gives_the_single_process_output(penguins_bundle: Path, dataset: Path,
                                                           reference: Path, tmp_path: Path) -> None:
    res = _cli("predict", str(penguins_bundle), "--input", str(dataset), "--output", str(tmp_path / "out"),
               "--keep", "id", "--engine", "dask", "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert "wrote 48,000 predictions for 8 files" in res.stderr and "engine dask" in res.stderr
    assert_same_outputs(tmp_path / "out", reference, dataset)


def test_a_users_cluster_gives_the_single_process_output(penguins_bundle: Path, dataset: Path,
                                                        reference: Path, cluster: Cluster, tmp_path: Path) -> None:
    res = _cli("predict", str(penguins_bundle), "--input", f"{dataset}/*.parquet", "--output",
               str(tmp_path / "out"), "--keep", "id", "--engine", "dask", "--scheduler", cluster.address)
    assert res.returncode == 0, res.stderr
    assert_same_outputs(tmp_path / "out", reference, dataset)
    # Dask's own variable names the cluster just as well
    res = _cli("predict", str(penguins_bundle), "--input", str(dataset), "--output", str(tmp_path / "env"),
               "--keep", "id", "--engine", "dask", env={"DASK_SCHEDULER_ADDRESS": cluster.address})
    assert res.returncode == 0, res.stderr
    assert_same_outputs(tmp_path / "env", reference, dataset)
    assert all(p.poll() is None for p in cluster.workers.values())


def test_python_api_scores_a_dask_dataframe(penguins_bundle: Path, dataset: Path, cluster: Cluster) -> None:
    import dask.dataframe as dd
    from distributed import Client

    from skedge.runtime.dask import ModelPlugin, plugin_name, score

    frame = pd.concat([pq.read_table(p).to_pandas() for p in sorted(dataset.iterdir())[:3]], ignore_index=True)
    expected = BatchScorer.load(penguins_bundle).score(frame)
    ddf = dd.from_pandas(frame, npartitions=5)

    def check(out: pd.DataFrame) -> None:
        assert list(out.columns) == ["id", "prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]
        assert out["id"].tolist() == frame["id"].tolist()
        assert out["prediction"].tolist() == expected["prediction"].tolist()
        for c in ("proba_Adelie", "proba_Chinstrap", "proba_Gentoo"):
            np.testing.assert_array_equal(out[c].to_numpy().view(np.int64), expected[c].view(np.int64))

    lazy = score(ddf, penguins_bundle, keep=["id"])  # no distributed client: Dask's threads, this process
    assert lazy.npartitions == 5
    check(lazy.compute())
    with Client(cluster.address, set_as_default=False) as client:
        lazy = score(ddf, penguins_bundle, keep=["id"], client=client)
        check(client.compute(lazy).result())
        # the worker plugin checks the bytes where they land (a schema note gives the damaged
        # copy its own key, so no worker has a scorer for it yet)
        payload = ModelBytes.read(penguins_bundle)
        damaged = ModelBytes(payload.model_bytes[:-1] + b"\0", payload.sha256, {**(payload.schema or {}), "n": 1},
                             payload.source)
        try:
            with pytest.raises(BundleError, match="corrupted on the way"):
                client.register_plugin(ModelPlugin(damaged), name=plugin_name(damaged))
        finally:
            client.unregister_worker_plugin(plugin_name(damaged))


# -- failures -------------------------------------------------------------------------

WATCH = textwrap.dedent("""
    import json, os, signal, sys, time
    from distributed import Client
    address, victim, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Client(address, set_as_default=False) as c:
        addr = {w["name"]: a for a, w in c.scheduler_info()["workers"].items()}[victim]
        print("ready", flush=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            keys = [str(k) for k in c.processing().get(addr, ()) if str(k).startswith("skedge-score")]
            if keys:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        while addr in c.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.05)
        print(json.dumps({"killed_during": keys, "workers_left": len(c.scheduler_info()["workers"])}))
""")


def test_a_worker_killed_mid_job(penguins_bundle: Path, tmp_path: Path) -> None:
    # files big enough (~0.1 s each) that the victim is caught holding one
    data = _write_dataset(tmp_path / "data", files=10, rows=40_000, seed=2)
    _local(penguins_bundle, data, tmp_path / "reference")
    with dask_cluster(tmp_path / "cluster") as c:
        victim = c.workers["w0"]
        watcher = subprocess.Popen([sys.executable, "-c", WATCH, c.address, "w0", str(victim.pid)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert watcher.stdout is not None
            assert watcher.stdout.readline().strip() == "ready", watcher.stderr and watcher.stderr.read()
            res = _cli("predict", str(penguins_bundle), "--input", str(data), "--output", str(tmp_path / "out"),
                       "--keep", "id", "--engine", "dask", "--scheduler", c.address)
            report = json.loads(watcher.communicate(timeout=60)[0].strip().splitlines()[-1])
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.communicate()
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert report["killed_during"], report  # it died holding a task...
        assert report["workers_left"] == 1
        assert c.workers["w1"].poll() is None
    assert res.returncode == 0, res.stderr  # ...which Dask ran again on the other worker
    assert "wrote 400,000 predictions for 10 files" in res.stderr
    assert_same_outputs(tmp_path / "out", tmp_path / "reference", data)


@pytest.fixture(scope="module")
def forty_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = _write_dataset(tmp_path_factory.mktemp("bad") / "data", files=40, rows=300, seed=3)
    bad = pq.read_table(data / "part-0006.parquet").to_pandas()
    bad.loc[123, "flipper_length_mm"] = np.inf
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), data / "part-0006.parquet")
    return data


@pytest.mark.parametrize("engine", ["local", "dask-local-cluster", "dask-scheduler"])
def test_a_bad_row_in_file_7_of_40(engine: str, penguins_bundle: Path, forty_files: Path, cluster: Cluster,
                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    extra = {"local": [], "dask-local-cluster": ["--engine", "dask", "--workers", "2"],
             "dask-scheduler": ["--engine", "dask", "--scheduler", cluster.address]}[engine]
    res = _cli("predict", str(penguins_bundle), "--input", str(forty_files), "--output", str(out), *extra)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"error: {forty_files / 'part-0006.parquet'}: row 123, field 'flipper_length_mm': "
        "expected a finite number, got inf (float)"]
    # no output of the failed run at all: not the file that failed, not the 39 others, no .partial
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []
    assert sorted(p.name for p in forty_files.iterdir()) == [f"part-{i:04d}.parquet" for i in range(40)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_is_one_line(penguins_bundle: Path, dataset: Path, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    quick = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    for how, env in (("--scheduler", quick), ("DASK_SCHEDULER_ADDRESS", {**quick, "DASK_SCHEDULER_ADDRESS": address})):
        args = ["--scheduler", address] if how == "--scheduler" else []
        res = _cli("predict", str(penguins_bundle), "--input", str(dataset), "--output", str(tmp_path / "out"),
                   "--engine", "dask", *args, env=env)
        assert res.returncode == 1, how
        lines = res.stderr.splitlines()
        assert len(lines) == 1, res.stderr
        assert lines[0].startswith(f"error: cannot reach the Dask scheduler at {address}: "), lines
        assert not (tmp_path / "out").exists()
