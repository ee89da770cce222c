"""Files in, files out: one output file per input file, written all or nothing.

A job is a list of ``FileJob`` (input file -> output file). Every task writes
into a staging directory beside the outputs; only when every file has been
scored are the staged files moved onto their destinations (``Plan.commit``).
A job that fails — a bad row in file 7 of 40, a lost cluster — removes the
staging directory and leaves no output of this run behind, not even the files
that were already done, so a half-finished run can never pass for a finished one.

``score_file`` is the unit of work, the same for every engine: the local engine
calls it in a loop, the Dask engine runs it as one task per file. Paths are
absolute, because a Dask worker's working directory is not the client's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ._batch import BatchScorer
from ._errors import DataError, SchemaError
from ._files import BATCH_ROWS, FORMATS, ColumnWriter, file_format, iter_chunks

__all__ = ["FileJob", "Plan", "plan_outputs", "scored_chunks", "score_file", "check_keep", "run_local", "Progress"]

STAGING_PREFIX = ".skedge-staging-"


@dataclass(frozen=True)
class FileJob:
    src: Path
    dest: Path  # where the output ends up
    staged: Path  # where the task writes it
    fmt: str  # output format


@dataclass
class Plan:
    jobs: list[FileJob]
    staging: Path
    out: Path  # the output directory, or the one output file
    made: list[Path] = field(default_factory=list)  # directories this plan created, deepest first

    def commit(self) -> None:
        """Move every staged output onto its destination, then drop the staging directory."""
        for job in self.jobs:
            if not job.staged.is_file():
                raise FileNotFoundError(f"{job.staged} is missing: the task for {job.src} reported success "
                                        "but its output is not there (is the output directory shared with "
                                        "every worker?)")
        for job in self.jobs:
            os.replace(job.staged, job.dest)
        self._drop_staging()

    def abort(self) -> None:
        """Remove the staging directory and whatever is in it, and the directories the plan made."""
        self._drop_staging()
        for d in self.made:
            with contextlib.suppress(OSError):  # not empty: something else is in there now; leave it
                d.rmdir()

    def _drop_staging(self) -> None:
        # a task the engine could not stop may still be creating a file in it: try again briefly
        for _ in range(5):
            shutil.rmtree(self.staging, ignore_errors=True)
            if not self.staging.exists():
                return
            time.sleep(0.1)


def plan_outputs(inputs: Sequence[Path], output: str | os.PathLike[str]) -> Plan:
    """Map input files to output files and make the staging directory.

    ``output`` is one file when there is one input and it ends in a known suffix
    (its format is then the suffix's, e.g. CSV in, Parquet out), and a directory
    otherwise: there each output takes its input's name and format. Raises ``OSError``
    (``FileExistsError``, ``NotADirectoryError``) before anything is written when the
    outputs would collide or overwrite an input.
    """
    out = Path(output).absolute()
    srcs = [p.absolute() for p in inputs]
    if len(srcs) == 1 and out.suffix.lower() in FORMATS and not out.is_dir():
        fmt = file_format(out)
        pairs = [(srcs[0], out)]
        staging_parent = out.parent
    else:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--output {output} is a file, but {len(srcs)} inputs need a directory")
        if out.suffix and not out.exists() and len(srcs) == 1:
            # "pred.txt" is a file name with a format skedge does not write, not a directory to create
            raise DataError(f"--output {output}: unknown output format {out.suffix!r}; name a "
                            f"{', '.join(sorted(FORMATS))} file or a directory")
        seen: dict[str, Path] = {}
        pairs = []
        for src in srcs:
            if src.name in seen:
                raise FileExistsError(f"{seen[src.name]} and {src} would both write {out / src.name}: give "
                                      "inputs with distinct names")
            seen[src.name] = src
            pairs.append((src, out / src.name))
        staging_parent = out
        fmt = ""
    for src, dest in pairs:
        if dest.exists() and dest.resolve() == src.resolve():
            raise FileExistsError(f"the output for {src} would overwrite the input: choose another --output")
    made = [d for d in (staging_parent, *staging_parent.parents) if not d.exists()]
    staging_parent.mkdir(parents=True, exist_ok=True)
    from ._stale import remove_stale

    remove_stale(staging_parent, STAGING_PREFIX)  # what killed runs left here (their pid is dead)
    # beside the outputs, so that commit is a rename on one filesystem
    staging = staging_parent / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    jobs = [FileJob(src, dest, staging / f"{i:05d}-{dest.name}", fmt or file_format(src))
            for i, (src, dest) in enumerate(pairs)]
    return Plan(jobs, staging, out, made)


def _in_file(exc: SchemaError, src: Path, offset: int) -> SchemaError:
    """The error with the file named and the row counted from the file's start, not the chunk's."""
    msg = str(exc)
    row = exc.row
    if row is not None:
        head = f"row {row}"
        rest = msg[len(head):] if msg.startswith(head) else f": {msg}"
        row += offset
        msg = f"row {row}{rest}"
    if not msg.startswith(str(src)):
        msg = f"{src}: {msg}"
    return SchemaError(msg, row=row, field=exc.field)


def check_keep(scorer: BatchScorer, keep: Sequence[str]) -> None:
    clash = [k for k in keep if k in scorer.columns]
    if clash:
        raise SchemaError(f"--keep column {clash[0]!r} has the name of an output column; rename it",
                          field=clash[0])


def scored_chunks(scorer: BatchScorer, src: Path, keep: tuple[str, ...] = (), *,
                  batch_rows: int = BATCH_ROWS) -> Iterator[tuple[int, dict[str, Any]]]:
    """(rows, output columns) per chunk of ``src``: the carried columns, then the model's outputs."""
    check_keep(scorer, keep)
    for chunk in iter_chunks(src, scorer.schema, keep=keep, batch_rows=batch_rows):
        try:
            out = scorer.score(chunk.features)
        except SchemaError as exc:
            raise _in_file(exc, src, chunk.offset) from None
        yield chunk.n, {**chunk.carried, **out}


def score_file(scorer: BatchScorer, src: Path, staged: Path, fmt: str, keep: tuple[str, ...] = (), *,
               on_rows: Callable[[int], None] | None = None, batch_rows: int = BATCH_ROWS) -> int:
    """Score one input file into ``staged`` (written whole or not at all); return its row count."""
    with ColumnWriter(staged, fmt) as writer:
        for n, cols in scored_chunks(scorer, src, keep, batch_rows=batch_rows):
            writer.write(cols)
            if on_rows is not None:
                on_rows(n)
        return writer.rows


class Progress:
    """One line on stderr, rewritten as files finish; silent when stderr is not a terminal."""

    def __init__(self, files: int, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.files = files
        self.done = 0
        self.rows = 0
        self.t0 = time.perf_counter()
        self._last = 0.0

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def add_rows(self, n: int) -> None:
        self.rows += n
        self._show()

    def file_done(self, rows: int | None = None) -> None:
        self.done += 1
        if rows is not None:
            self.rows += rows
        self._show(force=True)

    def _show(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not force and now - self._last < 0.2):
            return
        self._last = now
        rate = self.rows / max(self.seconds, 1e-9)
        self.stream.write(f"\r  scoring: {self.done}/{self.files} files, {self.rows:,} rows, {rate:,.0f} rows/s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done + self.rows:
            self.stream.write("\n")
            self.stream.flush()
        self.enabled = False


def run_local(scorer: BatchScorer, plan: Plan, keep: tuple[str, ...], progress: Progress) -> int:
    """Score every file of the plan in this process, one after the other; return the row count."""
    total = 0
    for job in plan.jobs:
        total += score_file(scorer, job.src, job.staged, job.fmt, keep, on_rows=progress.add_rows)
        progress.file_done()
    return total
