"""Run every benchmark in bench/ (each ``bench_*.py``), one after another, each in its own process.

    python bench/run_all.py                # what `make bench` runs
    python bench/run_all.py -- --quick     # arguments after -- go to every benchmark

One process per benchmark: each starts from a cold interpreter, and one that fails does not stop the rest.
Exits non-zero if any failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    benches = sorted(HERE.glob("bench_*.py"))
    if not benches:
        print("no bench_*.py in bench/", file=sys.stderr)
        return 1
    failed = []
    for path in benches:
        print(f"==> {path.name}", flush=True)
        t = time.perf_counter()
        rc = subprocess.run([sys.executable, str(path), *extra], check=False).returncode
        print(f"<== {path.name}: {'ok' if rc == 0 else f'failed ({rc})'} in {time.perf_counter() - t:.0f} s\n",
              flush=True)
        if rc != 0:
            failed.append(path.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
