"""Every metric family is registered on the daemon's own registry and moves on its event."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from oexec.models.enums import OrderState
from oexec.ops.metrics import (
    LATENCY_BUCKETS,
    Liquidity,
    Metrics,
    RateWindow,
    Stage,
    breaker_state_value,
)

from .factories import fill, order

Labels = dict[str, str]


# (what to call, sample name, labels, expected value after one call)
EVENTS: list[tuple[Callable[[Metrics], None], str, Labels, float]] = [
    (
        lambda m: m.order_placed("BTCUSDT", "BUY", "LIMIT"),
        "orders_placed_total",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"},
        1,
    ),
    (
        lambda m: m.order_filled("BTCUSDT", "SELL"),
        "orders_filled_total",
        {"symbol": "BTCUSDT", "side": "SELL"},
        1,
    ),
    (
        lambda m: m.order_rejected("BTCUSDT", "PRICE_TICK"),
        "orders_rejected_total",
        {"symbol": "BTCUSDT", "reason": "PRICE_TICK"},
        1,
    ),
    (
        lambda m: m.submission_latency("BTCUSDT", 0.003),
        "order_submission_duration_seconds_count",
        {"symbol": "BTCUSDT", "exchange": "binance_usdm"},
        1,
    ),
    (
        lambda m: m.breaker_transition("closed", "open"),
        "circuit_breaker_state",
        {"name": "venue"},
        2,
    ),
    (
        lambda m: m.breaker_transition("closed", "open"),
        "circuit_breaker_transitions_total",
        {"name": "venue", "from_state": "closed", "to_state": "open"},
        1,
    ),
    (
        lambda m: m.set_breaker_failures(4),
        "circuit_breaker_failures",
        {"name": "venue"},
        4,
    ),
    (lambda m: m.rate_limit_hit("orders"), "rate_limit_reached_total", {"type": "orders"}, 1),
    (
        lambda m: m.set_rate_limit(RateWindow.ORDERS_10S, 7, 240),
        "rate_limit_usage",
        {"window": "orders_10s"},
        7,
    ),
    (
        lambda m: m.set_rate_limit(RateWindow.WEIGHT_1M, 100, 1920),
        "rate_limit_limit",
        {"window": "weight_1m"},
        1920,
    ),
    (
        lambda m: m.validation_failure("QTY_STEP"),
        "validation_failures_total",
        {"rule": "QTY_STEP"},
        1,
    ),
    (
        lambda m: m.venue_request("/fapi/v1/order", 200, 0.01),
        "exchange_api_requests_total",
        {"exchange": "binance_usdm", "endpoint": "/fapi/v1/order", "status": "200"},
        1,
    ),
    (
        lambda m: m.venue_request("/fapi/v1/order", "timeout", 10.0),
        "exchange_api_request_duration_seconds_count",
        {"exchange": "binance_usdm", "endpoint": "/fapi/v1/order"},
        1,
    ),
    (
        lambda m: m.venue_error(-2010),
        "exchange_api_errors_total",
        {"exchange": "binance_usdm", "error_code": "-2010"},
        1,
    ),
    (lambda m: m.cache_hit(), "cache_hits_total", {}, 1),
    (lambda m: m.cache_miss(), "cache_misses_total", {}, 1),
    (lambda m: m.inflight(3), "requests_in_flight", {}, 3),
    (lambda m: m.set_queued(9), "requests_queued", {}, 9),
    (lambda m: m.busy(), "requests_busy_rejected_total", {}, 1),
    (
        lambda m: m.request("place", "RATE_LIMITED", 0.002),
        "requests_total",
        {"op": "place", "code": "RATE_LIMITED"},
        1,
    ),
    (
        lambda m: m.request("cancel", "ok", 0.002),
        "request_duration_seconds_count",
        {"op": "cancel"},
        1,
    ),
    (
        lambda m: m.stage(Stage.RISK, 0.00004),
        "pipeline_stage_duration_seconds_bucket",
        {"stage": "risk", "le": "5e-05"},
        1,
    ),
    (lambda m: m.set_user_stream_lag(0.25), "user_stream_lag_seconds", {}, 0.25),
    (lambda m: m.user_stream_reconnected(), "user_stream_reconnects_total", {}, 1),
    (lambda m: m.set_user_stream_connected(True), "user_stream_connected", {}, 1),
    (lambda m: m.recovery("sweep", 0), "tracking_recoveries_total", {"trigger": "sweep"}, 1),
    (lambda m: m.recovery("gap", 3), "tracking_corrections_total", {"trigger": "gap"}, 3),
    (
        lambda m: m.order_change(None, order(OrderState.UNKNOWN)),
        "orders_unknown_outcome",
        {},
        1,
    ),
    (
        lambda m: m.unknown_resolved(1.5, "found"),
        "unknown_outcome_resolution_seconds_count",
        {"outcome": "found"},
        1,
    ),
    (lambda m: m.set_event_sequence(42), "event_sequence", {}, 42),
    (
        lambda m: m.store_latency("claim", 0.0003),
        "store_operation_duration_seconds_count",
        {"op": "claim"},
        1,
    ),
    (
        lambda m: m.record_fill(
            "BTCUSDT",
            Liquidity.MAKER,
            notional=Decimal("100.5"),
            fee=Decimal("0.02"),
            fee_asset="USDT",
        ),
        "fills_total",
        {"symbol": "BTCUSDT", "liquidity": "maker"},
        1,
    ),
    (
        lambda m: m.record_fill(
            "BTCUSDT",
            Liquidity.TAKER,
            notional=Decimal("-100.5"),
            fee=Decimal("0"),
            fee_asset="USDT",
        ),
        "fill_notional_total",
        {"symbol": "BTCUSDT", "liquidity": "taker"},
        100.5,
    ),
    (
        lambda m: m.record_fill(
            "ETHUSDT",
            Liquidity.TAKER,
            notional=Decimal("50"),
            fee=Decimal("0.025"),
            fee_asset="USDT",
        ),
        "fees_total",
        {"asset": "USDT", "liquidity": "taker"},
        0.025,
    ),
    (
        lambda m: m.set_open_orders({OrderState.NEW: 5}),
        "open_orders",
        {"state": "NEW"},
        5,
    ),
    (lambda m: m.set_dependency("store", True), "dependency_up", {"name": "store"}, 1),
]


@pytest.mark.parametrize(("event", "sample", "labels", "expected"), EVENTS)
def test_event_moves_its_metric(
    event: Callable[[Metrics], None], sample: str, labels: Labels, expected: float
) -> None:
    m = Metrics()
    assert m.registry.get_sample_value(sample, labels) in (None, 0.0)
    event(m)
    assert m.registry.get_sample_value(sample, labels) == pytest.approx(expected)


def _family(sample: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def test_every_family_is_covered_by_an_event() -> None:
    families = {f.name for f in Metrics().registry.collect()}
    covered = {_family(sample) for _, sample, _, _ in EVENTS} | {"uptime_seconds"}
    assert families == covered


def test_plan_metric_names_are_kept() -> None:
    names = Metrics().sample_names()
    for name in (
        "orders_placed_total",
        "orders_filled_total",
        "orders_rejected_total",
        "order_submission_duration_seconds_bucket",
        "circuit_breaker_state",
        "rate_limit_reached_total",
        "validation_failures_total",
        "exchange_api_requests_total",
        "exchange_api_errors_total",
        "cache_hits_total",
        "cache_misses_total",
    ):
        assert name in names


def test_uptime_counts_from_started_at() -> None:
    import time

    m = Metrics(started_at=time.time() - 100)
    assert m.registry.get_sample_value("uptime_seconds") == pytest.approx(100, abs=5)


def test_daemons_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.cache_hit()
    assert a.registry.get_sample_value("cache_hits_total") == 1
    assert b.registry.get_sample_value("cache_hits_total") == 0
    assert REGISTRY.get_sample_value("cache_hits_total") is None


def test_latency_buckets_resolve_sub_millisecond() -> None:
    assert LATENCY_BUCKETS[0] <= 0.00005
    assert sum(1 for b in LATENCY_BUCKETS if b < 0.001) >= 4
    assert LATENCY_BUCKETS[-1] >= 10


def test_open_orders_gauge_resets_absent_states() -> None:
    m = Metrics()
    m.set_open_orders({OrderState.NEW: 3, OrderState.UNKNOWN: 1})
    m.set_open_orders({OrderState.PARTIALLY_FILLED: 2})
    value = m.registry.get_sample_value
    assert value("open_orders", {"state": "NEW"}) == 0
    assert value("open_orders", {"state": "UNKNOWN"}) == 0
    assert value("open_orders", {"state": "PARTIALLY_FILLED"}) == 2


def test_breaker_state_spellings() -> None:
    assert breaker_state_value("closed") == 0
    assert breaker_state_value("half-opened") == 1
    assert breaker_state_value("HALF_OPEN") == 1
    assert breaker_state_value("opened") == 2
    with pytest.raises(ValueError, match="unknown circuit breaker state"):
        breaker_state_value("melted")


def test_set_breaker_state_does_not_count_a_transition() -> None:
    m = Metrics()
    m.set_breaker_state("half-opened")
    assert m.registry.get_sample_value("circuit_breaker_state", {"name": "venue"}) == 1
    assert not [
        s
        for f in m.registry.collect()
        for s in f.samples
        if s.name == "circuit_breaker_transitions_total"
    ]


def test_label_children_are_cached() -> None:
    m = Metrics()
    m.order_placed("BTCUSDT", "BUY", "LIMIT")
    child = m._placed.get("BTCUSDT", "BUY", "LIMIT")
    assert m._placed.get("BTCUSDT", "BUY", "LIMIT") is child
    m.order_placed("BTCUSDT", "BUY", "LIMIT")
    assert (
        m.registry.get_sample_value(
            "orders_placed_total", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"}
        )
        == 2
    )


def test_fill_hook_takes_the_model() -> None:
    m = Metrics()
    m.fill(fill(is_maker=True))
    m.fill(fill(is_maker=False, commission="0.04"))
    value = m.registry.get_sample_value
    assert value("fills_total", {"symbol": "BTCUSDT", "liquidity": "maker"}) == 1
    assert value("fill_notional_total", {"symbol": "BTCUSDT", "liquidity": "taker"}) == 100
    assert value("fees_total", {"asset": "USDT", "liquidity": "taker"}) == pytest.approx(0.04)


def test_order_change_counts_lifecycle() -> None:
    m = Metrics()
    value = m.registry.get_sample_value
    placed = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"}
    m.order_change(None, order(OrderState.PENDING))
    m.order_change(order(OrderState.PENDING), order(OrderState.SUBMITTING))
    assert value("orders_placed_total", placed) is None
    assert value("open_orders", {"state": "SUBMITTING"}) == 1
    m.order_change(order(OrderState.SUBMITTING), order(OrderState.NEW))
    assert value("orders_placed_total", placed) == 1
    m.order_change(order(OrderState.NEW), order(OrderState.PARTIALLY_FILLED))
    m.order_change(order(OrderState.PARTIALLY_FILLED), order(OrderState.FILLED))
    assert value("orders_placed_total", placed) == 1
    assert value("orders_filled_total", {"symbol": "BTCUSDT", "side": "BUY"}) == 1
    for state in ("SUBMITTING", "NEW", "PARTIALLY_FILLED"):
        assert value("open_orders", {"state": state}) == 0
    assert [(r["id"], r["state"]) for r in m.orders.finished] == [("o-1", "FILLED")]
    assert not m.orders.active  # a final order leaves the open rows


def test_order_change_rejections_and_unknown() -> None:
    m = Metrics()
    value = m.registry.get_sample_value
    m.order_change(None, order(OrderState.REJECTED, "o-2", error_code="PRICE_TICK"))
    m.order_change(None, order(OrderState.REJECTED, "o-3"))
    assert value("orders_rejected_total", {"symbol": "BTCUSDT", "reason": "PRICE_TICK"}) == 1
    assert value("orders_rejected_total", {"symbol": "BTCUSDT", "reason": "UNSPECIFIED"}) == 1
    m.order_change(order(OrderState.SUBMITTING), order(OrderState.UNKNOWN))
    assert value("orders_unknown_outcome") == 1
    m.order_change(order(OrderState.UNKNOWN), order(OrderState.CANCELED))
    assert value("orders_unknown_outcome") == 0
    assert value("orders_placed_total", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"}) == 1
    # a repeated report of the same state counts nothing
    m.order_change(order(OrderState.CANCELED), order(OrderState.CANCELED))
    assert value("orders_placed_total", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"}) == 1


def test_seeded_orders_never_drive_counts_negative() -> None:
    m = Metrics()
    m.seed_orders([order(OrderState.NEW, "a"), order(OrderState.NEW, "b")])
    assert m.registry.get_sample_value("open_orders", {"state": "NEW"}) == 2
    # "before" missed by us (None) still moves the tracked state of "a"
    m.order_change(None, order(OrderState.CANCELED, "a"))
    m.order_change(None, order(OrderState.CANCELED, "never-seen"))
    assert m.registry.get_sample_value("open_orders", {"state": "NEW"}) == 1
    assert m.orders.open_count() == 1


def test_unknown_stage_name_gets_its_own_label() -> None:
    m = Metrics()
    m.stage("validation", 0.0001)
    m.stage("custom", 0.0001)
    m.stage("custom", 0.0001)
    value = m.registry.get_sample_value
    assert value("pipeline_stage_duration_seconds_count", {"stage": "validation"}) == 1
    assert value("pipeline_stage_duration_seconds_count", {"stage": "custom"}) == 2
