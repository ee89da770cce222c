"""A live model: follow an alias's channel, verify each update on the device, swap it in, roll it back (issue 15).

    from skedge.runtime import follow
    with follow("https://models.example.com/channel", name="penguins", alias="prod", trust="skedge.pub",
                every=300, state_dir="state", on_event=print) as model:
        model.predict(row)                 # Model's API: every attribute is the current model's

The live model delegates every attribute to the model it serves now (``predict``, ``schema``, ``verify``,
and whatever ``Model`` gains, such as ``monitor`` or ``explain``), so it needs no list of methods. A swap
is one assignment: a call reads the current model once and finishes on that session, so calls in flight
never see a half-swapped state. Calls that fail for a reason other than the caller's input
(``SchemaError``) are counted over the last ``window`` calls of the model served; above
``max_failure_rate`` the live model rolls back to ``previous`` (on its polling thread, without a download).

``source``: an ``https://`` URL (``http://127.0.0.1`` for tests) of ``skedge registry export-static``'s
output, that output as a directory, or a registry directory. Only ``_channel.py`` touches the network, with
the standard library's ``urllib``.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ._channel import open_source
from ._errors import BundleError, SchemaError
from ._follower import Follower, Held, UpdateEvent
from ._model import Model
from ._shadow import ShadowStats

__all__ = ["follow", "LiveModel", "UpdateEvent", "Held"]

_OWN = frozenset({"_primary", "_shadow", "_stats"})


class LiveModel:
    """``Model``'s API over whichever model the followed alias has on this device now; thread-safe."""

    def __init__(self, primary: Follower, shadow: Follower | None, *, every: float, max_failure_rate: float,
                 window: int, min_calls: int, shadow_share: float) -> None:
        self._primary = primary
        self._shadow = shadow
        self._stats = ShadowStats(primary.model.schema.task if primary.model else "classification")
        self._shadow_share = shadow_share
        self._shadow_seen = 0
        self._every = every
        self._max_rate = max_failure_rate
        self._min_calls = min_calls
        self._lock = threading.Lock()
        self._watched: Model | None = None
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._failures = 0
        self._rollback_reason: str | None = None
        self._closed = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"skedge-follow-{primary.name}@{primary.alias}",
                                        daemon=True)
        self._thread.start()

    # -- what the live model adds ----------------------------------------------
    @property
    def model(self) -> Model:
        """The model served now (a plain ``Model``; it does not follow updates itself)."""
        m = self._primary.model
        assert m is not None  # follow() returns only once one is loaded
        return m

    @property
    def status(self) -> dict[str, Any]:
        p = self._primary
        return {"name": p.name, "alias": p.alias, "version": p.held.version if p.held else None,
                "previous": p.previous.version if p.previous else None, "sequence": p.sequence,
                "source": p.source.description, "last_error": p.last_error, "pin": p.pin,
                "shadow": self._shadow.held.version if self._shadow and self._shadow.held else None}

    def check(self) -> bool:
        """Poll now (besides the timer); True when a new model was swapped in."""
        swapped = self._primary.update()
        if self._shadow is not None:
            self._shadow.update()
        return swapped

    def shadow_report(self, *, wait: float = 0.0) -> dict[str, Any]:
        """Agreement rate, PSI between served and candidate answers, both latencies (``wait``: for queued calls)."""
        if self._shadow is None:
            raise BundleError("this live model has no shadow: follow(..., shadow=ALIAS)")
        if wait:
            self._stats.wait(wait)
        return {"alias": self._shadow.alias, **self._stats.report()}

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._stats.close()

    def __enter__(self) -> LiveModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<skedge LiveModel {self._primary.name}@{self._primary.alias} serving {self.model!r}>"

    # -- delegation ------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in _OWN or name.startswith("__"):
            raise AttributeError(name)
        model = self.model
        attr = getattr(model, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(model, name, attr, args, kwargs)

        call.__name__ = name
        call.__doc__ = getattr(attr, "__doc__", None)
        return call

    def _call(self, model: Model, name: str, fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        t0 = time.perf_counter()
        try:
            out = fn(*args, **kwargs)
        except SchemaError:  # the caller's input, not the model's fault
            raise
        except Exception:
            self._outcome(model, False)
            raise
        served_s = time.perf_counter() - t0
        self._outcome(model, True)
        if name == "predict" and self._shadow is not None and len(args) == 1 and not kwargs:
            self._maybe_shadow(args[0], out, served_s)
        return out

    def _outcome(self, model: Model, ok: bool) -> None:
        with self._lock:
            if model is not self._watched:  # a swap: the window starts again for the model now served
                if model is not self._primary.model:
                    return  # a call that started on the model just replaced says nothing about the new one
                self._watched = model
                self._outcomes.clear()
                self._failures = 0
            if len(self._outcomes) == self._outcomes.maxlen and not self._outcomes[0]:
                self._failures -= 1
            self._outcomes.append(ok)
            self._failures += not ok
            n = len(self._outcomes)
            if n >= self._min_calls and self._failures > self._max_rate * n and self._rollback_reason is None \
                    and self._primary.previous is not None:
                self._rollback_reason = (f"{self._failures} of the last {n} calls failed on "
                                         f"{self._primary.held.version if self._primary.held else '?'} (more than "
                                         f"max_failure_rate {self._max_rate:g})")
                self._wake.set()

    def _maybe_shadow(self, rows: Any, served: Any, served_s: float) -> None:
        with self._lock:
            before = int(self._shadow_seen * self._shadow_share)
            self._shadow_seen += 1
            take = int(self._shadow_seen * self._shadow_share) > before
        shadow = self._shadow
        if not take or shadow is None or shadow.model is None:
            return
        candidate = shadow.model

        def run() -> tuple[Any, float, str | None]:
            t = time.perf_counter()
            answer = candidate.predict(rows)
            return answer, time.perf_counter() - t, candidate.version

        self._stats.submit(run, served, served_s)

    # -- the polling thread ----------------------------------------------------
    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self._every)
            self._wake.clear()
            if self._closed.is_set():
                return
            reason = self._rollback_reason
            try:
                if reason is not None:
                    self._primary.rollback(reason)
                    self._rollback_reason = None
                self.check()
            except Exception as exc:  # the thread outlives any one bad poll (a callback's error included)
                self._primary.last_error = f"{type(exc).__name__}: {exc}"


def follow(source: str | os.PathLike[str], *, name: str, alias: str, trust: Any = None, every: float = 300.0,
           state_dir: str | os.PathLike[str] | None = None, on_event: Callable[[UpdateEvent], Any] | None = None,
           pin: str | None = None, device_id: str | None = None, max_failure_rate: float = 0.05,
           shadow: str | None = None, shadow_share: float = 0.1, window: int = 100,
           min_calls: int = 20) -> LiveModel:
    """A live model following ``name@alias`` at ``source``; returns once a first model is loaded.

    ``trust``: the Ed25519 public key channels and bundles must be signed by (None: hashes and golden rows
    only — for a registry without signatures). ``every``: seconds between polls. ``state_dir``: where
    ``current``/``previous`` and what was accepted persist (default ``$SKEDGE_STATE_DIR``, else
    ``$XDG_STATE_HOME/skedge``). ``on_event(UpdateEvent)``: every accept, reject and rollback, with the reason.
    ``pin``: take only this version. ``device_id``: the device's bucket for a channel's rollout share (default:
    a random id kept in ``state_dir``). ``max_failure_rate``: over the last ``window`` calls (from
    ``min_calls`` on), a higher share of failing calls rolls back. ``shadow``: another alias scored on
    ``shadow_share`` of ``predict`` calls (``shadow_report()``), never returned.
    Raises ``BundleError`` when neither the channel nor ``state_dir`` gives a model.
    """
    from .registry import check_name
    from .signing import state_dir_for

    check_name(name)
    for a in (alias, shadow):  # they name folders in state_dir and paths on the host: plain names only
        if a is not None:
            check_name(a, "alias")
    if every <= 0:
        raise BundleError(f"every={every}: the seconds between polls must be positive")
    if not 0.0 <= max_failure_rate <= 1.0 or not 0.0 <= shadow_share <= 1.0:
        raise BundleError("max_failure_rate and shadow_share are shares between 0 and 1")
    root = state_dir_for(state_dir) / "follow"
    root.mkdir(parents=True, exist_ok=True)

    def emit(event: UpdateEvent) -> None:
        if on_event is not None:
            try:
                on_event(event)
            except Exception:  # an app's callback must not stop its model from updating
                pass

    primary = Follower(open_source(source, name, alias, trust), name, alias, trust=trust, state_root=root,
                       emit=emit, pin=pin, device_id=device_id)
    primary.start()
    primary.update()
    if primary.model is None:
        why = primary.last_error or "the channel named no model this device accepts"
        raise BundleError(f"{name}@{alias}: no model from {primary.source.description} ({why}), and none kept in "
                          f"{primary.dir}")
    second = None
    if shadow is not None:
        second = Follower(open_source(source, name, shadow, trust), name, shadow, trust=trust, state_root=root,
                          emit=emit, device_id=device_id)
        second.start()
        second.update()
    return LiveModel(primary, second, every=every, max_failure_rate=max_failure_rate, window=window,
                     min_calls=max(1, min_calls), shadow_share=shadow_share)
