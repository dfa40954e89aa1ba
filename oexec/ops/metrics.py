"""The daemon's metrics API: one method per event, on a per-daemon registry.

One :class:`Metrics` per daemon: several daemons may live in one test process, so
nothing is registered on prometheus_client's global registry. The families themselves
(names, labels, buckets) are the table in oexec/ops/metric_families.py; this module is
how the rest of the daemon moves them.

Hot path and the label-child cache: ``Counter.labels(...)`` takes a lock, validates and
joins the label values on every call. Labels known up front (pipeline stage, order
state, rate-limit window, the exchange name) are bound once in ``__init__``; labels only
known at run time (symbol, side, reason, endpoint) go through :class:`_Children`, a
plain dict from the label tuple to the bound child. After the first sighting of a label
set a call costs one tuple and one dict lookup. Label values come from bounded sets
(symbols from exchangeInfo, ErrorCodes, venue endpoints), so the caches stay small.

Per order the daemon makes ≈ 40 metric updates, so the hot ones skip
prometheus_client's per-update work (a lock per value, a Python loop over the buckets):

- histograms (pipeline stages, store calls, venue round trips, requests) add up in
  :class:`_Accumulated` — a bucket index by ``bisect`` and two plain additions — and
  hand their totals to the prometheus child whenever the registry is read (``/metrics``,
  the dashboard, a test's ``get_sample_value``), so every exposition is exact;
- gauges that change per request (in flight, open orders by state, unknown outcomes,
  user-stream lag) are read when collected (``set_function``) instead of set per change.

Money and quantities are ``Decimal`` everywhere else; Prometheus samples are floats, so
fill notional and fees are converted here, at the edge, for display only.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from oexec.models import Fill, Order
from oexec.models.enums import OrderState
from oexec.ops.metric_families import LATENCY_BUCKETS, RESOLUTION_BUCKETS, MetricFamilies
from oexec.ops.order_metrics import OrderBook, OrderEvent, classify

__all__ = ["LATENCY_BUCKETS", "RESOLUTION_BUCKETS", "Liquidity", "Metrics", "RateWindow", "Stage"]


BREAKER_HISTORY = 50


class Stage(StrEnum):
    """Pipeline stages timed by ``pipeline_stage_duration_seconds{stage}``."""

    DECODE = "decode"
    IDEMPOTENCY = "idempotency"
    VALIDATION = "validation"
    RISK = "risk"
    LIMITER = "limiter"
    BREAKER = "breaker"
    SIGN = "sign"
    VENUE = "venue"
    PERSIST = "persist"
    PUBLISH = "publish"
    REPLY = "reply"


class RateWindow(StrEnum):
    """The venue's rate-limit windows (Binance: X-MBX-ORDER-COUNT-10S/1M, USED-WEIGHT-1M)."""

    ORDERS_10S = "orders_10s"
    ORDERS_1M = "orders_1m"
    WEIGHT_1M = "weight_1m"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


# circuit_breaker_state values (plan §7.1: 0=closed, 1=half-open, 2=open). Spellings of
# the breaker libraries we may sit on (purgatory says "opened"/"half-opened").
BREAKER_STATE_VALUES: Mapping[str, int] = {
    "closed": 0,
    "half_open": 1,
    "half_opened": 1,
    "open": 2,
    "opened": 2,
}


def breaker_state_value(state: str) -> int:
    """Map a breaker state name to the gauge value; raises ValueError on an unknown one."""
    key = str(state).lower().replace("-", "_")
    try:
        return BREAKER_STATE_VALUES[key]
    except KeyError:
        raise ValueError(f"unknown circuit breaker state {state!r}") from None


def normalise_breaker_state(state: str) -> str:
    """Canonical label value for a breaker state: closed, half_open or open."""
    return ("closed", "half_open", "open")[breaker_state_value(state)]


M = TypeVar("M", Counter, Gauge, Histogram)


class _Children(Generic[M]):
    """Label tuple -> bound child, so repeated label sets skip ``labels()``."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._cache: dict[tuple[str, ...], M] = {}

    def get(self, *labels: str) -> M:
        try:
            return self._cache[labels]
        except KeyError:
            child: M = self._metric.labels(*labels)
            self._cache[labels] = child
            return child


class _Accumulated:
    """Observations of one histogram child, added up here until the registry is read.

    ``fold`` hands the counts and the sum to the prometheus child (its ``_buckets`` and
    ``_sum`` values: prometheus_client has no public bulk observe; tests/ops pin that
    the exposition equals observing one by one). NaN is not observed (no duration is).
    """

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        self._bounds: list[float] = list(child._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        if amount == amount:  # not NaN
            self._counts[bisect_left(self._bounds, amount)] += 1
            self._sum += amount

    def fold(self) -> None:
        counts, total = self._counts, self._sum
        if not any(counts):
            return
        self._counts, self._sum = [0] * len(counts), 0.0
        buckets = self._child._buckets
        for i, n in enumerate(counts):
            if n:
                buckets[i].inc(n)
        self._child._sum.inc(total)


class _AccumulatedChildren:
    """Label tuple -> :class:`_Accumulated`, folded into the family when it is collected."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: Histogram) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], _Accumulated] = {}
        collect = metric.collect

        def folded_collect() -> Any:
            self.fold()
            return collect()

        # The registry (and every reader) calls the family's ``collect``: fold first.
        metric.collect = folded_collect  # type: ignore[method-assign]

    def get(self, *labels: str) -> _Accumulated:
        try:
            return self._cache[labels]
        except KeyError:
            child = self._cache[labels] = _Accumulated(self._metric.labels(*labels))
            return child

    def fold(self) -> None:
        for child in self._cache.values():
            child.fold()


class Metrics(MetricFamilies):
    """The daemon's metrics. Call the event methods; the attributes are the raw families.

    ``exchange`` fills the ``exchange`` label of the plan's venue metrics. ``started_at``
    is the daemon's start as ``time.time()`` seconds; ``uptime_seconds`` derives from it.
    Implements the front end's FrontMetrics hook (``request``, ``busy``, ``inflight``).
    """

    def __init__(self, *, exchange: str = "binance_usdm", started_at: float | None = None):
        super().__init__()
        self.exchange = exchange
        self.started_at = time.time() if started_at is None else started_at
        self.uptime.set_function(lambda: max(0.0, time.time() - self.started_at))
        self.orders = OrderBook()
        # Recent breaker transitions for the live dashboard (Prometheus keeps the counts).
        self.breaker_history: deque[dict[str, Any]] = deque(maxlen=BREAKER_HISTORY)
        self._bind_children()
        self._bind_read_gauges()

    def _bind_children(self) -> None:
        """Pre-bind known label sets; build the caches for run-time ones."""
        self._stages = _AccumulatedChildren(self.pipeline_stage_duration)
        self._stage: dict[str, _Accumulated] = {s.value: self._stages.get(s.value) for s in Stage}
        self._usage = {w: self.rate_limit_usage.labels(w.value) for w in RateWindow}
        self._limit = {w: self.rate_limit_limit.labels(w.value) for w in RateWindow}
        self._placed = _Children(self.orders_placed)
        self._filled = _Children(self.orders_filled)
        self._rejected = _Children(self.orders_rejected)
        self._submission = _AccumulatedChildren(self.order_submission_duration)
        self._api_requests = _Children(self.exchange_api_requests)
        self._api_duration = _AccumulatedChildren(self.exchange_api_request_duration)
        self._api_errors = _Children(self.exchange_api_errors)
        self._requests = _Children(self.requests)
        self._request_duration = _AccumulatedChildren(self.request_duration)
        self._store = _AccumulatedChildren(self.store_operation_duration)
        self._fills = _Children(self.fills)
        self._notional = _Children(self.fill_notional)
        self._fees = _Children(self.fees)
        self._validation = _Children(self.validation_failures)

    def _bind_read_gauges(self) -> None:
        """Gauges that move per request are read when collected, not set per change."""
        self._inflight = 0
        self._lag_s = 0.0
        # Live view of the order book's counts until set_open_orders is given others.
        self._open_counts: Mapping[OrderState, int] = self.orders.counts
        self.requests_in_flight.set_function(lambda: self._inflight)
        self.user_stream_lag.set_function(lambda: self._lag_s)
        self.orders_unknown_outcome.set_function(
            lambda: self.orders.counts.get(OrderState.UNKNOWN, 0)
        )
        for state in OrderState:
            if state.is_open:
                self.open_orders.labels(state.value).set_function(self._open_count(state))

    def _open_count(self, state: OrderState) -> Callable[[], float]:
        return lambda: self._open_counts.get(state, 0)

    # --- orders ------------------------------------------------------------------------
    def order_change(self, before: Order | None, after: Order) -> None:
        """Writer hook: every persisted change; counts placed/filled/rejected, open states."""
        for event in classify(before, after):
            if event is OrderEvent.PLACED:
                self.order_placed(after.symbol, after.side.value, after.type.value)
            elif event is OrderEvent.FILLED:
                self.order_filled(after.symbol, after.side.value)
            else:
                self.order_rejected(after.symbol, after.error_code or "UNSPECIFIED")
        self.orders.record(after)
        self._publish_open_counts()

    def seed_orders(self, orders: Iterable[Order]) -> None:
        """Open orders loaded from the store at start-up (no events counted)."""
        for order in orders:
            self.orders.apply(order)
        self._publish_open_counts()

    def _publish_open_counts(self) -> None:
        # The gauges read the order book when collected: nothing to set per change.
        self._open_counts = self.orders.counts

    def order_placed(self, symbol: str, side: str, order_type: str) -> None:
        self._placed.get(symbol, side, order_type).inc()

    def order_filled(self, symbol: str, side: str) -> None:
        self._filled.get(symbol, side).inc()

    def order_rejected(self, symbol: str, reason: str) -> None:
        """``reason`` is the ErrorCode value: a bounded label set."""
        self._rejected.get(symbol, reason).inc()

    def submission_latency(self, symbol: str, seconds: float) -> None:
        self._submission.get(symbol, self.exchange).observe(seconds)

    def set_open_orders(self, counts: Mapping[OrderState, int]) -> None:
        """Set every open state's gauge; states absent from ``counts`` read 0."""
        self._open_counts = dict(counts)

    def fill(self, fill: Fill) -> None:
        """Tracker hook: one trade of ours."""
        self.record_fill(
            fill.symbol,
            Liquidity.MAKER if fill.is_maker else Liquidity.TAKER,
            notional=fill.price * fill.quantity,
            fee=fill.commission,
            fee_asset=fill.commission_asset,
        )

    def record_fill(
        self, symbol: str, liquidity: Liquidity, *, notional: Decimal, fee: Decimal, fee_asset: str
    ) -> None:
        """Rebates (negative fees) are not added: counters only go up."""
        liq = liquidity.value
        self._fills.get(symbol, liq).inc()
        self._notional.get(symbol, liq).inc(float(abs(notional)))
        if fee > 0:
            self._fees.get(fee_asset, liq).inc(float(fee))

    # --- front end and pipeline ----------------------------------------------------------
    def request(self, op: str, outcome: str, seconds: float) -> None:
        """One reply sent: ``outcome`` is ``ok`` or the ErrorCode value."""
        self._requests.get(op, outcome).inc()
        self._request_duration.get(op).observe(seconds)

    def busy(self) -> None:
        self.requests_busy_rejected.inc()

    def inflight(self, n: int) -> None:
        self._inflight = n

    def set_queued(self, n: int) -> None:
        self.requests_queued.set(n)

    def stage(self, stage: str, seconds: float) -> None:
        """Pipeline hook; ``stage`` is a :class:`Stage` value (others get a label too)."""
        child = self._stage.get(stage)
        if child is None:
            child = self._stage[stage] = self._stages.get(stage)
        child.observe(seconds)

    def cache_hit(self) -> None:
        self.cache_hits.inc()

    def cache_miss(self) -> None:
        self.cache_misses.inc()

    def validation_failure(self, rule: str) -> None:
        self._validation.get(rule).inc()

    # --- limits and breaker --------------------------------------------------------------
    def rate_limit_hit(self, limit_type: str) -> None:
        """``limit_type``: ``orders``, ``weight`` or ``ban`` (429/418 pause)."""
        self.rate_limit_reached.labels(limit_type).inc()

    def set_rate_limit(self, window: RateWindow, used: int, limit: int) -> None:
        self._usage[window].set(used)
        self._limit[window].set(limit)

    def breaker_transition(self, from_state: str, to_state: str, *, name: str = "venue") -> None:
        """Record a state change and set the state gauge (ValueError on unknown names)."""
        old, new = normalise_breaker_state(from_state), normalise_breaker_state(to_state)
        self.circuit_breaker_state.labels(name).set(breaker_state_value(new))
        self.circuit_breaker_transitions.labels(name, old, new).inc()
        self.breaker_history.appendleft({"time": time.time(), "name": name, "from": old, "to": new})

    def set_breaker_state(self, state: str, *, name: str = "venue") -> None:
        """Set the gauge without counting a transition (initial state at start-up)."""
        self.circuit_breaker_state.labels(name).set(breaker_state_value(state))

    def set_breaker_failures(self, failures: int, *, name: str = "venue") -> None:
        self.circuit_breaker_failures.labels(name).set(failures)

    # --- venue -----------------------------------------------------------------------------
    def venue_request(self, endpoint: str, status: int | str, seconds: float) -> None:
        """One REST round trip; ``status`` is the HTTP status or ``timeout``/``error``."""
        self._api_requests.get(self.exchange, endpoint, str(status)).inc()
        self._api_duration.get(self.exchange, endpoint).observe(seconds)

    def venue_error(self, error_code: int | str) -> None:
        self._api_errors.get(self.exchange, str(error_code)).inc()

    # --- tracking, events, store ---------------------------------------------------------
    def set_user_stream_lag(self, seconds: float) -> None:
        self._lag_s = seconds

    def user_stream_reconnected(self) -> None:
        self.user_stream_reconnects.inc()

    def set_user_stream_connected(self, connected: bool) -> None:
        self.user_stream_connected.set(1 if connected else 0)

    def recovery(self, trigger: str, corrections: int) -> None:
        """Tracker hook: a sweep against the venue ran (gap, poll, sweep, reconcile)."""
        self.tracking_recoveries.labels(trigger).inc()
        if corrections:
            self.tracking_corrections.labels(trigger).inc(corrections)

    def unknown_resolved(self, seconds: float, outcome: str = "resolved") -> None:
        """Resolver hook: an UNKNOWN order reached a known state after ``seconds``."""
        self.unknown_outcome_resolution.labels(outcome).observe(seconds)

    def set_event_sequence(self, seq: int) -> None:
        self.event_sequence.set(seq)

    def store_latency(self, op: str, seconds: float) -> None:
        self._store.get(op).observe(seconds)

    def set_dependency(self, name: str, up: bool) -> None:
        self.dependency_up.labels(name).set(1 if up else 0)
