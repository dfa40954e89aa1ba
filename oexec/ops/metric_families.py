"""Which metrics exist: one table of name, kind, help, labels and buckets.

The table is the metrics reference (docs/operations.md mirrors it; the Grafana test
checks every dashboard query against it). Names of plan §7.1 are kept verbatim, the
rest follow their style. :class:`MetricFamilies` builds every row on a fresh
per-daemon registry and exposes it as a typed attribute.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# 50 µs … 10 s: the pipeline's own stages take tens of microseconds, a venue round trip
# milliseconds to seconds; both must land in distinct buckets.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Unknown-outcome resolution takes seconds to minutes (TrackingConfig.unknown_resolve_max_s).
RESOLUTION_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)

_C, _G, _H = Counter, Gauge, Histogram


class Family(NamedTuple):
    attr: str
    kind: type[Counter] | type[Gauge] | type[Histogram]
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS


FAMILIES: tuple[Family, ...] = (
    # --- plan §7.1 -------------------------------------------------------------------
    Family("orders_placed", _C, "orders_placed_total", "Orders accepted by the venue",
           ("symbol", "side", "type")),
    Family("orders_filled", _C, "orders_filled_total", "Orders completely filled",
           ("symbol", "side")),
    Family("orders_rejected", _C, "orders_rejected_total",
           "Orders rejected, by ErrorCode (validation, risk, throttle, breaker, venue)",
           ("symbol", "reason")),
    Family("order_submission_duration", _H, "order_submission_duration_seconds",
           "Request received to venue answer, for new orders", ("symbol", "exchange")),
    Family("circuit_breaker_state", _G, "circuit_breaker_state",
           "Circuit breaker state (0=closed, 1=half-open, 2=open)", ("name",)),
    Family("rate_limit_reached", _C, "rate_limit_reached_total",
           "Requests refused or paused by the rate limiter (orders, weight, ban)", ("type",)),
    Family("validation_failures", _C, "validation_failures_total",
           "Pre-trade validation failures", ("rule",)),
    Family("exchange_api_requests", _C, "exchange_api_requests_total",
           "Venue REST requests by endpoint and HTTP status", ("exchange", "endpoint", "status")),
    Family("exchange_api_errors", _C, "exchange_api_errors_total",
           "Venue error answers by venue error code", ("exchange", "error_code")),
    Family("cache_hits", _C, "cache_hits_total", "Idempotency hits (request_id seen before)"),
    Family("cache_misses", _C, "cache_misses_total", "Idempotency misses (new request_id)"),
    # --- rate limits and breaker -------------------------------------------------------
    Family("rate_limit_usage", _G, "rate_limit_usage", "Used units in the venue window",
           ("window",)),
    Family("rate_limit_limit", _G, "rate_limit_limit",
           "Limit of the venue window (after the safety margin)", ("window",)),
    Family("circuit_breaker_transitions", _C, "circuit_breaker_transitions_total",
           "Breaker state changes", ("name", "from_state", "to_state")),
    Family("circuit_breaker_failures", _G, "circuit_breaker_failures",
           "Consecutive failures counted by the breaker", ("name",)),
    # --- front end and pipeline --------------------------------------------------------
    Family("requests_in_flight", _G, "requests_in_flight", "Requests being processed"),
    Family("requests_queued", _G, "requests_queued", "Requests accepted, not yet started"),
    Family("requests_busy_rejected", _C, "requests_busy_rejected_total",
           "Requests refused with BUSY"),
    Family("requests", _C, "requests_total", "Requests answered, by op and outcome",
           ("op", "code")),
    Family("request_duration", _H, "request_duration_seconds",
           "Request latency from decode to reply, by op", ("op",)),
    Family("pipeline_stage_duration", _H, "pipeline_stage_duration_seconds",
           "Time spent in each pipeline stage", ("stage",)),
    Family("exchange_api_request_duration", _H, "exchange_api_request_duration_seconds",
           "Venue REST round trip by endpoint", ("exchange", "endpoint")),
    # --- tracking, events, store -------------------------------------------------------
    Family("user_stream_lag", _G, "user_stream_lag_seconds",
           "Local receive time minus venue event time"),
    Family("user_stream_reconnects", _C, "user_stream_reconnects_total",
           "User data stream reconnections"),
    Family("user_stream_connected", _G, "user_stream_connected",
           "1 while the user data stream is connected"),
    Family("tracking_recoveries", _C, "tracking_recoveries_total",
           "Recovery sweeps against the venue, by trigger", ("trigger",)),
    Family("tracking_corrections", _C, "tracking_corrections_total",
           "Orders changed or adopted by a recovery sweep, by trigger", ("trigger",)),
    Family("orders_unknown_outcome", _G, "orders_unknown_outcome",
           "Orders in state UNKNOWN, being resolved"),
    Family("unknown_outcome_resolution", _H, "unknown_outcome_resolution_seconds",
           "Time from UNKNOWN to a known state, by outcome", ("outcome",), RESOLUTION_BUCKETS),
    Family("event_sequence", _G, "event_sequence", "Sequence number of the last event"),
    Family("store_operation_duration", _H, "store_operation_duration_seconds",
           "Order store call latency by operation", ("op",)),
    # --- fills and orders --------------------------------------------------------------
    Family("fills", _C, "fills_total", "Trades (fills) by liquidity", ("symbol", "liquidity")),
    Family("fill_notional", _C, "fill_notional_total",
           "Filled notional in quote asset (display only: float)", ("symbol", "liquidity")),
    Family("fees", _C, "fees_total",
           "Commission paid by asset (display only: float; rebates not counted)",
           ("asset", "liquidity")),
    Family("open_orders", _G, "open_orders", "Orders by open state", ("state",)),
    # --- process -------------------------------------------------------------------------
    Family("dependency_up", _G, "dependency_up",
           "1 if the last health check of the dependency passed", ("name",)),
    Family("uptime", _G, "uptime_seconds", "Seconds since the daemon started"),
)  # fmt: skip


def _build(family: Family, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    kwargs: dict[str, Any] = {"registry": registry}
    if family.kind is Histogram:
        kwargs["buckets"] = family.buckets
    return family.kind(family.name, family.help, family.labels, **kwargs)


class MetricFamilies:
    """Every family of :data:`FAMILIES` as a typed attribute on its own registry."""

    orders_placed: Counter
    orders_filled: Counter
    orders_rejected: Counter
    order_submission_duration: Histogram
    circuit_breaker_state: Gauge
    rate_limit_reached: Counter
    validation_failures: Counter
    exchange_api_requests: Counter
    exchange_api_errors: Counter
    cache_hits: Counter
    cache_misses: Counter
    rate_limit_usage: Gauge
    rate_limit_limit: Gauge
    circuit_breaker_transitions: Counter
    circuit_breaker_failures: Gauge
    requests_in_flight: Gauge
    requests_queued: Gauge
    requests_busy_rejected: Counter
    requests: Counter
    request_duration: Histogram
    pipeline_stage_duration: Histogram
    exchange_api_request_duration: Histogram
    user_stream_lag: Gauge
    user_stream_reconnects: Counter
    user_stream_connected: Gauge
    tracking_recoveries: Counter
    tracking_corrections: Counter
    orders_unknown_outcome: Gauge
    unknown_outcome_resolution: Histogram
    event_sequence: Gauge
    store_operation_duration: Histogram
    fills: Counter
    fill_notional: Counter
    fees: Counter
    open_orders: Gauge
    dependency_up: Gauge
    uptime: Gauge

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        for family in FAMILIES:
            setattr(self, family.attr, _build(family, self.registry))

    def sample_names(self) -> frozenset[str]:
        """Every series name this registry can expose (``_total``, ``_bucket``, ...)."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
        }
        names: set[str] = set()
        for family in self.registry.collect():
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        return frozenset(names)
