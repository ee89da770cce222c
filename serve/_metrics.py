"""Prometheus metrics of one app: requests, rows scored, rejects by reason, latency, the model served.

Each app has its own ``CollectorRegistry`` (two apps in one process, as in tests, do not share counters).
With ``--workers N`` the workers are separate processes: ``PROMETHEUS_MULTIPROC_DIR`` is set by ``serve()``
before they start, every worker writes its samples there, and ``/metrics`` (answered by any one worker)
sums them over all workers with prometheus-client's ``MultiProcessCollector``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["Metrics", "ROUTES"]

# the label of a request's route: a fixed set, so that a client probing random paths cannot grow the series
ROUTES = ("/predict", "/explain", "/health", "/model", "/metrics", "/openapi.json", "/docs", "/redoc")
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # in multiprocess mode the samples live in files; the registry is made per scrape (render)
        self.registry = None if self.multiprocess else CollectorRegistry()
        reg: Any = self.registry
        self.requests = Counter("skedge_requests", "HTTP requests answered, by route and status",
                                ("route", "status"), registry=reg)
        self.rows = Counter("skedge_rows_scored", "rows scored by /predict and /explain", registry=reg)
        self.rejects = Counter("skedge_rejects", "requests refused, by reason", ("reason",), registry=reg)
        self.latency = Histogram("skedge_request_seconds", "time from request to the end of the response",
                                 ("route",), buckets=_BUCKETS, registry=reg)
        kw: dict[str, Any] = {"multiprocess_mode": "liveall"} if self.multiprocess else {}
        self.model = Gauge("skedge_model_info", "the model being served (1 for the current one)",
                           ("name", "version", "release", "digest"), registry=reg, **kw)
        self._timers = {r: self.latency.labels(r) for r in (*ROUTES, "other")}
        self._served: tuple[str, ...] | None = None

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self._timers[route].observe(seconds)

    def set_model(self, name: str, version: str | None, release: int | None, digest: str | None) -> None:
        labels = (name, version or "", "" if release is None else str(release), digest or "")
        if labels == self._served:
            return
        if self._served is not None:
            self.model.labels(*self._served).set(0)
        self.model.labels(*labels).set(1)
        self._served = labels

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.registry is not None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return generate_latest(reg), CONTENT_TYPE_LATEST

    @staticmethod
    def worker_exit() -> None:
        """A worker that stops: its live gauges leave the sums (counters stay, as Prometheus expects)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
