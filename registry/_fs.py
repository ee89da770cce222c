"""Crash-safe writes for the registry: temporary name, fsync, link or rename, fsync the directory.

A reader (never locking) sees a file whole or not at all. A writer killed at any moment leaves at most a
temporary entry in ``REG/.tmp`` named after its pid, which ``fsck --repair`` removes once that pid is gone.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

__all__ = ["fsync_dir", "tmp_path", "create_exclusive", "replace_file", "store_tree", "pid_alive", "TMP"]

TMP = ".tmp"


def fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path(reg: Path, suffix: str = "") -> Path:
    d = reg / TMP
    d.mkdir(exist_ok=True)
    return d / f"{os.getpid()}-{secrets.token_hex(6)}{suffix}"


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def create_exclusive(reg: Path, path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists (then False): the compare-and-swap of the registry.

    The bytes are written and fsynced under a temporary name first and hard-linked into place, so the
    file appears complete or not at all, and of two writers racing for one name exactly one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(reg)
    _write_synced(tmp, data)
    try:
        os.link(tmp, path)
        won = True
    except FileExistsError:
        won = False
    finally:
        os.unlink(tmp)
    if won:
        fsync_dir(path.parent)
    return won


def replace_file(reg: Path, path: Path, data: bytes) -> None:
    """Replace ``path`` whole (a derived snapshot: rebuilt from the log when in doubt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(reg)
    _write_synced(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def store_tree(reg: Path, dest: Path, files: Mapping[str, bytes]) -> bool:
    """Write a directory of files under a temporary name and rename it to ``dest`` (False: it was there)."""
    if dest.is_dir():
        return False
    tmp = tmp_path(reg, ".d")
    for name, data in sorted(files.items()):
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        _write_synced(p, data)
    for d in sorted({(tmp / n).parent for n in files}, key=lambda x: -len(x.parts)):
        fsync_dir(d)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp, dest)
    except OSError:  # another writer stored the same content first (ENOTEMPTY / EEXIST)
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    fsync_dir(dest.parent)
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
