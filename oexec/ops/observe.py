"""Metric taps around ports the daemon already has: the rate gate and the order store.

Why wrappers instead of hooks inside the limiter and the stores: the daemon may sit on
the local limiter or the shared (Redis) one, on SQLite or Redis; one tap around the
port counts all of them the same way and keeps ``prometheus_client`` out of the core.

- :class:`ObservedGate` counts ``rate_limit_reached_total{type}`` when the gate refuses
  a request (``orders``/``weight`` window full before the deadline, ``ban`` while
  paused after a 429/418) and when the venue makes it pause (``ban``).
- :class:`TimedStore` times every coroutine method of the store into
  ``store_operation_duration_seconds{op}`` and forwards everything else untouched, so
  backend-specific attributes keep working through it.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from oexec.errors import ErrorCode, ThrottleError
from oexec.ops.metrics import Metrics
from oexec.service.ports import RateWindow, RequestGate

#: ThrottleError code -> rate_limit_reached type (RATE_LIMITED is refined by window).
_REFUSALS = {ErrorCode.RATE_LIMITED: "orders", ErrorCode.VENUE_BANNED: "ban"}
#: window-name prefix (oexec/limits/windows.py: ``orders_10s``, ``weight_1m``) -> type.
_WINDOW_TYPES = {"orders": "orders", "weight": "weight"}


def limit_type(exc: ThrottleError) -> str | None:
    """The ``type`` label of a refusal, or None when it is not a rate-limit refusal."""
    kind = _REFUSALS.get(exc.code)
    if kind != "orders":
        return kind
    window = str(exc.details.get("window", ""))
    return _WINDOW_TYPES.get(window.partition("_")[0], "orders")


class ObservedGate:
    """A RequestGate that counts refusals and venue pauses, then behaves as ``inner``."""

    def __init__(self, inner: RequestGate, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None:
        try:
            await self.inner.acquire(weight=weight, orders=orders, deadline_s=deadline_s)
        except ThrottleError as exc:
            kind = limit_type(exc)
            if kind is not None:
                self.metrics.rate_limit_hit(kind)
            raise

    def observe(
        self,
        used: Mapping[RateWindow, int],
        window_age_s: Mapping[RateWindow, float] | None = None,
    ) -> None:
        self.inner.observe(used, window_age_s)

    def pause(self, retry_after_s: float) -> None:
        self.metrics.rate_limit_hit("ban")
        self.inner.pause(retry_after_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _timed(
    method: Callable[..., Awaitable[Any]], op: str, observe: Callable[[str, float], None]
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            observe(op, time.perf_counter() - started)

    return call


class TimedStore:
    """Wraps an OrderStore: coroutine methods are timed by name, the rest pass through.

    Timed wrappers are cached on the instance at first use, so later calls cost one
    attribute lookup plus two clock reads. Method names are the store contract's:
    a bounded label set.
    """

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(value):
            return value
        timed = _timed(value, name, self.metrics.store_latency)
        setattr(self, name, timed)
        return timed
