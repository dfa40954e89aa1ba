"""Every Prometheus metric of the daemon, on a per-daemon registry.

One :class:`Metrics` per daemon: several daemons may live in one test process, so
nothing is registered on prometheus_client's global registry. Names of plan §7.1 are
kept verbatim (dashboards and alerts depend on them); the rest follow the same style.

Hot path and the label-child cache: ``Counter.labels(...)`` takes a lock, validates and
joins the label values on every call. Labels known up front (pipeline stage, order
state, rate-limit window, the exchange name) are bound once in ``__init__``; labels only
known at run time (symbol, side, reason, endpoint) go through :class:`_Children`, a
plain dict from the label tuple to the bound child. After the first sighting of a label
set a call costs one tuple and one dict lookup. Label values come from bounded sets
(symbols from exchangeInfo, ErrorCodes, venue endpoints), so the caches stay small.

Money and quantities are ``Decimal`` everywhere else; Prometheus samples are floats, so
fill notional and fees are converted here, at the edge, for display only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from oexec.models.enums import OrderState

# 50 µs … 10 s: the pipeline's own stages take tens of microseconds, a venue round trip
# milliseconds to seconds; both must land in distinct buckets.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Unknown-outcome resolution takes seconds to minutes (TrackingConfig.unknown_resolve_max_s).
RESOLUTION_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


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


class Metrics:
    """The daemon's metrics. Call the event methods; the attributes are the raw families.

    ``exchange`` fills the ``exchange`` label of the plan's venue metrics. ``started_at``
    is the daemon's start as ``time.time()`` seconds; ``uptime_seconds`` derives from it.
    """

    def __init__(self, *, exchange: str = "binance_usdm", started_at: float | None = None):
        self.exchange = exchange
        self.started_at = time.time() if started_at is None else started_at
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        lat = LATENCY_BUCKETS

        # --- plan §7.1 ---------------------------------------------------------------
        self.orders_placed = Counter(
            "orders_placed_total",
            "Orders accepted by the venue",
            ["symbol", "side", "type"],
            registry=r,
        )
        self.orders_filled = Counter(
            "orders_filled_total", "Orders completely filled", ["symbol", "side"], registry=r
        )
        self.orders_rejected = Counter(
            "orders_rejected_total",
            "Orders rejected, by ErrorCode (validation, risk, throttle, breaker, venue)",
            ["symbol", "reason"],
            registry=r,
        )
        self.order_submission_duration = Histogram(
            "order_submission_duration_seconds",
            "Request received to venue answer, for new orders",
            ["symbol", "exchange"],
            buckets=lat,
            registry=r,
        )
        self.circuit_breaker_state = Gauge(
            "circuit_breaker_state",
            "Circuit breaker state (0=closed, 1=half-open, 2=open)",
            ["name"],
            registry=r,
        )
        self.rate_limit_reached = Counter(
            "rate_limit_reached_total",
            "Requests refused or paused by the rate limiter (orders, weight, ban)",
            ["type"],
            registry=r,
        )
        self.validation_failures = Counter(
            "validation_failures_total", "Pre-trade validation failures", ["rule"], registry=r
        )
        self.exchange_api_requests = Counter(
            "exchange_api_requests_total",
            "Venue REST requests by endpoint and HTTP status",
            ["exchange", "endpoint", "status"],
            registry=r,
        )
        self.exchange_api_errors = Counter(
            "exchange_api_errors_total",
            "Venue error answers by venue error code",
            ["exchange", "error_code"],
            registry=r,
        )
        self.cache_hits = Counter(
            "cache_hits_total", "Idempotency hits (request_id seen before)", registry=r
        )
        self.cache_misses = Counter(
            "cache_misses_total", "Idempotency misses (new request_id)", registry=r
        )

        # --- rate limits and breaker -------------------------------------------------
        self.rate_limit_usage = Gauge(
            "rate_limit_usage", "Used units in the venue window", ["window"], registry=r
        )
        self.rate_limit_limit = Gauge(
            "rate_limit_limit",
            "Limit of the venue window (after safety margin)",
            ["window"],
            registry=r,
        )
        self.circuit_breaker_transitions = Counter(
            "circuit_breaker_transitions_total",
            "Breaker state changes",
            ["name", "from_state", "to_state"],
            registry=r,
        )
        self.circuit_breaker_failures = Gauge(
            "circuit_breaker_failures",
            "Consecutive failures counted by the breaker",
            ["name"],
            registry=r,
        )

        # --- front end and pipeline ------------------------------------------------
        self.requests_in_flight = Gauge(
            "requests_in_flight", "Requests being processed by workers", registry=r
        )
        self.requests_queued = Gauge(
            "requests_queued", "Requests accepted but not yet started", registry=r
        )
        self.requests_busy_rejected = Counter(
            "requests_busy_rejected_total", "Requests refused with BUSY", registry=r
        )
        self.requests = Counter(
            "requests_total", "Requests answered, by op and reply code", ["op", "code"], registry=r
        )
        self.request_duration = Histogram(
            "request_duration_seconds",
            "Request latency from decode to reply, by op",
            ["op"],
            buckets=lat,
            registry=r,
        )
        self.pipeline_stage_duration = Histogram(
            "pipeline_stage_duration_seconds",
            "Time spent in each pipeline stage",
            ["stage"],
            buckets=lat,
            registry=r,
        )
        self.exchange_api_request_duration = Histogram(
            "exchange_api_request_duration_seconds",
            "Venue REST round trip by endpoint",
            ["exchange", "endpoint"],
            buckets=lat,
            registry=r,
        )

        # --- tracking, events, store -------------------------------------------------
        self.user_stream_lag = Gauge(
            "user_stream_lag_seconds", "Local receive time minus venue event time", registry=r
        )
        self.user_stream_reconnects = Counter(
            "user_stream_reconnects_total", "User data stream reconnections", registry=r
        )
        self.user_stream_connected = Gauge(
            "user_stream_connected", "1 while the user data stream is connected", registry=r
        )
        self.orders_unknown_outcome = Gauge(
            "orders_unknown_outcome", "Orders in state UNKNOWN, being resolved", registry=r
        )
        self.unknown_outcome_resolution = Histogram(
            "unknown_outcome_resolution_seconds",
            "Time from UNKNOWN to a known state, by outcome (found, not_found, gave_up)",
            ["outcome"],
            buckets=RESOLUTION_BUCKETS,
            registry=r,
        )
        self.event_sequence = Gauge(
            "event_sequence", "Sequence number of the last published event", registry=r
        )
        self.store_operation_duration = Histogram(
            "store_operation_duration_seconds",
            "Order store call latency by operation",
            ["op"],
            buckets=lat,
            registry=r,
        )

        # --- fills and orders ------------------------------------------------------
        self.fills = Counter(
            "fills_total", "Trades (fills) by liquidity", ["symbol", "liquidity"], registry=r
        )
        self.fill_notional = Counter(
            "fill_notional_total",
            "Filled notional in quote asset (display only: float)",
            ["symbol", "liquidity"],
            registry=r,
        )
        self.fees = Counter(
            "fees_total",
            "Commission paid by asset (display only: float; negative rebates not counted)",
            ["asset", "liquidity"],
            registry=r,
        )
        self.open_orders = Gauge("open_orders", "Orders by open state", ["state"], registry=r)

        # --- process -------------------------------------------------------------------
        self.dependency_up = Gauge(
            "dependency_up",
            "1 if the last health check of the dependency passed",
            ["name"],
            registry=r,
        )
        self.uptime = Gauge("uptime_seconds", "Seconds since the daemon started", registry=r)
        self.uptime.set_function(lambda: max(0.0, time.time() - self.started_at))

        self._bind_children()

    def _bind_children(self) -> None:
        """Pre-bind known label sets; build the caches for run-time ones."""
        self._stage = {s: self.pipeline_stage_duration.labels(s.value) for s in Stage}
        self._usage = {w: self.rate_limit_usage.labels(w.value) for w in RateWindow}
        self._limit = {w: self.rate_limit_limit.labels(w.value) for w in RateWindow}
        self._open = {s: self.open_orders.labels(s.value) for s in OrderState if s.is_open}
        self._placed = _Children(self.orders_placed)
        self._filled = _Children(self.orders_filled)
        self._rejected = _Children(self.orders_rejected)
        self._submission = _Children(self.order_submission_duration)
        self._api_requests = _Children(self.exchange_api_requests)
        self._api_duration = _Children(self.exchange_api_request_duration)
        self._api_errors = _Children(self.exchange_api_errors)
        self._requests = _Children(self.requests)
        self._request_duration = _Children(self.request_duration)
        self._store = _Children(self.store_operation_duration)
        self._fills = _Children(self.fills)
        self._notional = _Children(self.fill_notional)
        self._fees = _Children(self.fees)
        self._validation = _Children(self.validation_failures)

    # --- orders ------------------------------------------------------------------------
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
        for state, child in self._open.items():
            child.set(counts.get(state, 0))

    def fill(
        self,
        symbol: str,
        liquidity: Liquidity,
        *,
        notional: Decimal,
        fee: Decimal,
        fee_asset: str,
    ) -> None:
        """One trade. Rebates (negative fees) are not added: counters only go up."""
        liq = liquidity.value
        self._fills.get(symbol, liq).inc()
        self._notional.get(symbol, liq).inc(float(abs(notional)))
        if fee > 0:
            self._fees.get(fee_asset, liq).inc(float(fee))

    # --- pipeline ------------------------------------------------------------------------
    def stage_latency(self, stage: Stage, seconds: float) -> None:
        self._stage[stage].observe(seconds)

    def request_completed(self, op: str, seconds: float, code: str = "OK") -> None:
        """A reply was sent: ``code`` is ``OK`` or the ErrorCode value."""
        self._requests.get(op, code).inc()
        self._request_duration.get(op).observe(seconds)

    def set_in_flight(self, n: int) -> None:
        self.requests_in_flight.set(n)

    def set_queued(self, n: int) -> None:
        self.requests_queued.set(n)

    def busy_rejected(self) -> None:
        self.requests_busy_rejected.inc()

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

    def breaker_transition(self, name: str, from_state: str, to_state: str) -> None:
        """Record a state change and set the state gauge (ValueError on unknown names)."""
        old, new = normalise_breaker_state(from_state), normalise_breaker_state(to_state)
        self.circuit_breaker_state.labels(name).set(breaker_state_value(new))
        self.circuit_breaker_transitions.labels(name, old, new).inc()

    def set_breaker_state(self, name: str, state: str) -> None:
        """Set the gauge without counting a transition (initial state at start-up)."""
        self.circuit_breaker_state.labels(name).set(breaker_state_value(state))

    def set_breaker_failures(self, name: str, failures: int) -> None:
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
        self.user_stream_lag.set(seconds)

    def user_stream_reconnected(self) -> None:
        self.user_stream_reconnects.inc()

    def set_user_stream_connected(self, connected: bool) -> None:
        self.user_stream_connected.set(1 if connected else 0)

    def set_unknown_outcome(self, n: int) -> None:
        self.orders_unknown_outcome.set(n)

    def unknown_outcome_resolved(self, seconds: float, outcome: str) -> None:
        self.unknown_outcome_resolution.labels(outcome).observe(seconds)

    def set_event_sequence(self, seq: int) -> None:
        self.event_sequence.set(seq)

    def store_latency(self, op: str, seconds: float) -> None:
        self._store.get(op).observe(seconds)

    def set_dependency(self, name: str, up: bool) -> None:
        self.dependency_up.labels(name).set(1 if up else 0)

    # --- introspection -------------------------------------------------------------------
    def sample_names(self) -> frozenset[str]:
        """Every series name this registry can expose (``_total``, ``_bucket``, ...)."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",),
        }
        names: set[str] = set()
        for family in self.registry.collect():
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        return frozenset(names)
