"""A throwaway PostgreSQL cluster (Debian's ``postgresql`` package): initdb + pg_ctl on a free local port.

Used by tests/db/conftest.py and bench/bench_db.py. The cluster lives in a temporary directory and is
stopped and deleted on exit; as root the server runs as the ``postgres`` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def find_pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin holding initdb and pg_ctl, else the ones on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres(bin_dir: Path) -> Iterator[str]:
    """Start a cluster; yield the URL of its ``postgres`` database (user ``skedge``, trust auth, 127.0.0.1)."""
    tmp = Path(tempfile.mkdtemp(prefix="skedge-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, sock, log = tmp / "data", tmp / "sock", tmp / "server.log"
    port = _free_port()

    def run(*args: str) -> None:
        res = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, cwd=tmp)
        if res.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({res.returncode}): {res.stderr[-2000:]}\n{tail}")

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "skedge", "-E", "UTF8", "--no-sync")
        run("mkdir", str(sock))
        # fsync off: a throwaway cluster; the all-or-nothing tests rely on transactions, not on disk flushes
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off", "start")
        try:
            yield f"postgresql://skedge@127.0.0.1:{port}/postgres"
        finally:
            with contextlib.suppress(Exception):
                run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fresh_database(admin_url: str, name: str) -> str:
    """Create database ``name`` (a plain identifier) on the cluster and return its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
