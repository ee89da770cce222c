"""skedge.registry: models as plain files, no server (DESIGN.md "Signing, registry, live updates").

    from skedge.registry import init_registry, publish, promote, rollback, history, listing, fsck
    init_registry("reg")
    publish("models/penguins/1.0.0", "reg")
    promote("reg", "penguins", "1.0.0", "prod", data="benchmark.csv")
    load("reg", name="penguins", alias="prod")        # skedge.runtime: what an app does

Readers (``skedge.runtime.registry``) never lock; writers write whole files under temporary names and
move aliases by compare-and-swap on the hash-chained event log.
"""

from skedge.runtime.registry import parse_ref, resolve

from ._alias import Moved, history, promote, rollback
from ._store import Published, init_registry, listing, publish
from .fsck import FsckReport, fsck
from .gate import GateReport, MetricDiff, compare
from .static import Exported, export_static

__all__ = ["init_registry", "publish", "Published", "promote", "rollback", "Moved", "history", "listing", "fsck",
           "FsckReport", "compare", "GateReport", "MetricDiff", "resolve", "parse_ref",
           "export_static", "Exported"]
