"""The live dashboard's data: one JSON-safe snapshot of the seven panels of plan §7.5.

Built from the daemon's own metrics registry and order book, so the dashboard shows
exactly what Prometheus would, without a Prometheus. Latency quantiles are estimated
from histogram buckets the way PromQL's ``histogram_quantile`` does, over a sliding
window of recent snapshots (so the chart moves with current traffic, not the all-time
distribution).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from oexec.ops.metrics import Metrics

QUANTILES = (0.5, 0.95, 0.99)
LATENCY_WINDOW_S = 30.0
#: Rows of each order list one snapshot carries (the page shows what fits).
OPEN_ORDERS_LISTED = 100


def bucket_quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float | None:
    """Quantile ``q`` from cumulative bucket counts (last bound +Inf); None when empty."""
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


_VALUE_SUFFIX = {"counter": "_total", "gauge": "", "histogram": "_bucket"}


def _samples(metric: Counter | Gauge | Histogram) -> Iterable[Any]:
    """The value samples (counter ``_total``, gauge, histogram ``_bucket``)."""
    for family in metric.collect():
        name = family.name + _VALUE_SUFFIX[family.type]
        yield from (s for s in family.samples if s.name == name)


def _by(metric: Counter | Gauge, *labels: str) -> dict[str, float]:
    """Sum of the metric's samples grouped by ``labels`` (joined with ``/``)."""
    out: dict[str, float] = defaultdict(float)
    for sample in _samples(metric):
        out["/".join(sample.labels[name] for name in labels)] += sample.value
    return dict(out)


def _buckets(histogram: Histogram, label: str) -> dict[str, tuple[list[float], list[float]]]:
    """Per ``label`` value: (bounds, cumulative counts), summed over other labels."""
    grouped: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for sample in _samples(histogram):
        grouped[sample.labels[label]][float(sample.labels["le"])] += sample.value
    result = {}
    for key, counts in grouped.items():
        bounds = sorted(counts)
        result[key] = (bounds, [counts[b] for b in bounds])
    return result


class LatencyWindow:
    """Submission latency quantiles over the last ``window_s`` seconds, per exchange."""

    def __init__(self, window_s: float = LATENCY_WINDOW_S) -> None:
        self.window_s = window_s
        self._history: deque[tuple[float, dict[str, tuple[list[float], list[float]]]]] = deque()

    def update(self, histogram: Histogram, now: float) -> dict[str, dict[str, float | None]]:
        current = _buckets(histogram, "exchange")
        self._history.append((now, current))
        while len(self._history) > 1 and now - self._history[0][0] > self.window_s:
            self._history.popleft()
        oldest = self._history[0][1] if len(self._history) > 1 else {}
        out: dict[str, dict[str, float | None]] = {}
        for exchange, (bounds, counts) in current.items():
            base = oldest.get(exchange, (bounds, [0.0] * len(counts)))[1]
            delta = [c - b for c, b in zip(counts, base, strict=True)]
            out[exchange] = {
                f"p{round(q * 100)}": bucket_quantile(q, bounds, delta) for q in QUANTILES
            }
            out[exchange]["count"] = delta[-1] if delta else 0.0
        return out


class SnapshotBuilder:
    """Builds the dashboard snapshot from a :class:`Metrics`; keeps the latency window."""

    def __init__(self, metrics: Metrics, *, window_s: float = LATENCY_WINDOW_S) -> None:
        self.metrics = metrics
        self.latency = LatencyWindow(window_s)

    def build(self, now: float | None = None) -> dict[str, Any]:
        m = self.metrics
        now = time.time() if now is None else now
        return {
            "time": now,
            "active_orders": {
                "open": m.orders.open_count(),
                "by_state": {s.value: n for s, n in sorted(m.orders.counts.items())},
                "placed_total": sum(_by(m.orders_placed).values()),
                "filled_total": sum(_by(m.orders_filled).values()),
                # one row per open order, the most recently changed first
                "orders": m.orders.open_rows(OPEN_ORDERS_LISTED),
                # orders that reached a final state, newest first
                "recent_activity": list(m.orders.finished),
            },
            "latency": self.latency.update(m.order_submission_duration, now),
            "breaker": {
                "state": _by(m.circuit_breaker_state, "name"),
                "failures": _by(m.circuit_breaker_failures, "name"),
                "transitions": list(m.breaker_history),
            },
            "fills": {
                "count": _by(m.fills, "liquidity"),
                "notional": _by(m.fill_notional, "liquidity"),
                "fees": _by(m.fees, "asset", "liquidity"),
            },
            "rejections": {
                "by_reason": _by(m.orders_rejected, "reason"),
                "total": sum(_by(m.orders_rejected).values()),
                "validation": _by(m.validation_failures, "rule"),
            },
            "rate_limits": {
                "usage": _by(m.rate_limit_usage, "window"),
                "limit": _by(m.rate_limit_limit, "window"),
                "reached": _by(m.rate_limit_reached, "type"),
                "requests_by_endpoint": _by(m.exchange_api_requests, "endpoint"),
            },
            "health": {
                "uptime_seconds": max(0.0, now - m.started_at),
                "dependencies": _by(m.dependency_up, "name"),
                "requests_by_code": _by(m.requests, "code"),
                "venue_errors": _by(m.exchange_api_errors, "error_code"),
                "user_stream_connected": sum(_by(m.user_stream_connected).values()),
                "user_stream_lag_seconds": sum(_by(m.user_stream_lag).values()),
                "in_flight": sum(_by(m.requests_in_flight).values()),
            },
        }
