"""Histograms that add up in plain Python and gauges read when collected must expose
exactly what prometheus_client would have after the same updates one by one; this also
pins the prometheus_client internals the fold writes to."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from oexec.models.enums import OrderState
from oexec.ops.metric_families import LATENCY_BUCKETS
from oexec.ops.metrics import Metrics

AMOUNTS = [0.0, 0.00005, 0.00007, 0.0002, 0.0011, 0.004, 0.3, 2.5, 9.9, 10.0, 11.0, 1e9]


def _reference(amounts: list[float]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    h = Histogram(
        "pipeline_stage_duration_seconds", "x", ("stage",), registry=registry,
        buckets=LATENCY_BUCKETS,
    )  # fmt: skip
    for amount in amounts:
        h.labels("venue").observe(amount)
    return _samples(registry)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        if family.name == "pipeline_stage_duration_seconds"
        for s in family.samples
        if not s.name.endswith("_created") and s.labels.get("stage") == "venue"
    }


def test_accumulated_histogram_exposes_what_observing_one_by_one_would() -> None:
    m = Metrics()
    for amount in AMOUNTS:
        m.stage("venue", amount)
    # bucket counts exact; the sum up to float rounding (it is added in another order)
    assert _samples(m.registry) == pytest.approx(_reference(AMOUNTS), rel=1e-12)
    # a second batch after a read adds to the first, and a read with nothing new is stable
    for amount in AMOUNTS[:5]:
        m.stage("venue", amount)
    expected = _reference(AMOUNTS + AMOUNTS[:5])
    assert _samples(m.registry) == pytest.approx(expected, rel=1e-12)
    assert _samples(m.registry) == pytest.approx(expected, rel=1e-12)


def test_every_reader_sees_accumulated_observations() -> None:
    m = Metrics()
    m.store_latency("claim", 0.0003)
    m.request("place_order", "ok", 0.002)
    m.venue_request("/fapi/v1/order", 200, 0.001)
    m.submission_latency("BTCUSDT", 0.001)
    text = generate_latest(m.registry).decode()
    assert 'store_operation_duration_seconds_count{op="claim"} 1.0' in text
    assert 'request_duration_seconds_count{op="place_order"} 1.0' in text
    assert "exchange_api_request_duration_seconds_count{" in text
    assert 'order_submission_duration_seconds_sum{exchange="binance_usdm",symbol="BTCUSDT"}' in (
        text
    )


def test_read_gauges_follow_the_latest_value() -> None:
    m = Metrics()
    value = m.registry.get_sample_value
    m.inflight(4)
    m.inflight(2)
    m.set_user_stream_lag(0.5)
    assert value("requests_in_flight") == 2
    assert value("user_stream_lag_seconds") == 0.5
    counts = {OrderState.NEW: 3}
    m.set_open_orders(counts)
    counts[OrderState.NEW] = 99  # the gauge keeps what it was given, not the caller's dict
    assert value("open_orders", {"state": "NEW"}) == 3
