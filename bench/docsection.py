"""Each benchmark writes its own section of docs/bench.md, between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``: replaced where it is, or appended, so one benchmark's rerun leaves the others' figures."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_section"]


def write_section(doc: Path, start: str, end: str, body: str) -> None:
    old = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    section = f"{start}\n{body.strip(chr(10))}\n{end}"
    if start in old and end in old:
        new = old[:old.index(start)] + section + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(new, encoding="utf-8")
