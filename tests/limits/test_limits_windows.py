"""Window planning: margin, caps, bucket shape."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oexec.config import LimitsConfig
from oexec.limits.windows import (
    WindowSpec,
    amount_for,
    burst_size,
    effective_limit,
    interval_label,
    plan_windows,
)
from oexec.models import RateLimitRule
from oexec.venue.binance.policy import RATE_WINDOWS as DEFAULT_VENUE_RULES

D = Decimal


def by_name(specs: tuple[WindowSpec, ...]) -> dict[str, WindowSpec]:
    return {spec.name: spec for spec in specs}


def test_binance_defaults_with_the_default_margin() -> None:
    specs = by_name(plan_windows(DEFAULT_VENUE_RULES, LimitsConfig()))
    assert {name: (s.limit, s.burst, s.venue_limit) for name, s in specs.items()} == {
        "weight_1m": (1920, 480, 2400),
        "orders_10s": (240, 60, 300),
        "orders_1m": (960, 240, 1200),
    }
    orders = specs["orders_10s"]
    # burst + drain over one interval is exactly the limit
    assert orders.burst + orders.rate_per_s * orders.interval_s == pytest.approx(orders.limit)


def test_config_caps_lower_but_never_raise_a_limit() -> None:
    config = LimitsConfig(orders_per_10s=100, orders_per_minute=5000, weight_per_minute=50)
    specs = by_name(plan_windows(DEFAULT_VENUE_RULES, config))
    assert specs["orders_10s"].limit == 100
    assert specs["orders_1m"].limit == 960
    assert specs["weight_1m"].limit == 50


def test_a_cap_for_an_unpublished_window_is_enforced_as_given() -> None:
    specs = by_name(plan_windows([], LimitsConfig(orders_per_10s=7)))
    assert list(specs) == ["orders_10s"]
    assert (specs["orders_10s"].limit, specs["orders_10s"].venue_limit) == (7, 0)


def test_unknown_kinds_and_bad_rules_are_ignored_and_duplicates_keep_the_strictest() -> None:
    rules = [
        RateLimitRule("ORDERS", 10, 300),
        RateLimitRule("ORDERS", 10, 100),
        RateLimitRule("SOMETHING_NEW", 60, 10),
        RateLimitRule("ORDERS", 0, 10),
        RateLimitRule("REQUEST_WEIGHT", 60, 0),
        RateLimitRule("RAW_REQUESTS", 300, 1000),
    ]
    specs = by_name(plan_windows(rules, LimitsConfig()))
    assert set(specs) == {"orders_10s", "requests_5m"}
    assert specs["orders_10s"].limit == 80
    assert amount_for(specs["requests_5m"], weight=0, orders=0) == 1


@pytest.mark.parametrize(
    ("limit", "margin", "expected"),
    [(300, "0.8", 240), (299, "0.8", 239), (1, "0.5", 1), (3, "0.1", 1), (1200, "1", 1200)],
)
def test_effective_limit_rounds_down_but_stays_positive(
    limit: int, margin: str, expected: int
) -> None:
    assert effective_limit(limit, D(margin)) == expected


@pytest.mark.parametrize(
    ("limit", "fraction", "expected"),
    [(240, "0.25", 60), (10, "0.5", 5), (1, "0.25", 1), (2, "1", 1), (3, "0", 1), (10, "0.99", 9)],
)
def test_burst_leaves_room_to_drain(limit: int, fraction: str, expected: int) -> None:
    assert burst_size(limit, D(fraction)) == expected


def test_interval_labels_match_the_venue_headers() -> None:
    assert [interval_label(s) for s in (10, 60, 300, 3600, 86400, 90)] == [
        "10s",
        "1m",
        "5m",
        "1h",
        "1d",
        "90s",
    ]
