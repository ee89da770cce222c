"""Work folders a killed run left behind, and how to tell them from a live run's.

Bundles are written into ``.<version>.<pid>-<random>.partial`` and ``skedge predict`` stages its outputs in
``.skedge-staging-<pid>-<random>``: renamed into place or removed when the run ends, but a run killed
with SIGKILL (or a machine that lost power) leaves them. The next export or predict into that directory
removes the ones that are certainly dead: the process named in the folder no longer exists on this
machine, and the folder is older than the running process (so a folder a live process of another
machine made on a shared disk, whose pid means nothing here, is left alone while that run can still be
going). A folder without a pid (written by an older skedge) counts as dead after a day.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

__all__ = ["remove_stale", "pid_alive", "STARTED"]

# this process's start, as near as the runtime can tell without psutil: when skedge.runtime was imported
STARTED = time.time()
_NO_PID_TTL = 24 * 3600.0
_PID = re.compile(r"(?:^|[.-])(\d+)-[0-9A-Za-z_]+(?:\.partial)?$")


def pid_alive(pid: int, *, zombie_is_dead: bool = False) -> bool:
    """Whether a process with this pid exists on this machine. A zombie (killed, not yet reaped) counts as
    alive unless ``zombie_is_dead``: a run record asks whether its writer can still write (it cannot)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return True  # unknown: keep the folder
    if zombie_is_dead:
        with contextlib.suppress(OSError, IndexError):
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def remove_stale(parent: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Remove ``parent``'s hidden work folders named ``prefix…suffix`` whose run is dead; return what went.

    Never raises: cleaning up after someone else is a courtesy, not a reason for this run to fail.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    now = time.time()
    for e in entries:
        name = e.name
        if not (name.startswith(prefix) and name.endswith(suffix) and name.startswith(".")):
            continue
        try:
            if not e.is_dir(follow_symlinks=False):
                continue
            mtime = e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        m = _PID.search(name[len(prefix):])
        if m is not None:
            pid = int(m.group(1))
            dead = pid != os.getpid() and not pid_alive(pid) and mtime < STARTED
        else:
            dead = mtime < now - _NO_PID_TTL
        if dead:
            shutil.rmtree(e.path, ignore_errors=True)
            if not os.path.lexists(e.path):
                removed.append(Path(e.path))
    return removed
