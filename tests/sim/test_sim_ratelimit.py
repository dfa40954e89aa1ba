"""Venue rate limiters: fixed windows, 429 with Retry-After, escalating 418 bans."""

from __future__ import annotations

import pytest

from oexec.sim.config import RateLimitConfig
from oexec.sim.ratelimit import RateLimited, RateLimiter

T0 = 1_700_000_080_000  # 40 s into a minute


def limiter(**changes: object) -> RateLimiter:
    return RateLimiter(RateLimitConfig(**changes))  # type: ignore[arg-type]


def test_weight_counts_and_resets_at_the_minute() -> None:
    rl = limiter(weight_per_minute=10)
    assert rl.check_ip("ip", 4, T0).weight_1m == 4
    assert rl.check_ip("ip", 6, T0 + 1).weight_1m == 10
    assert rl.check_ip("other", 1, T0).weight_1m == 1  # per IP
    assert rl.check_ip("ip", 1, T0 + 20_000).weight_1m == 1  # next minute window


def test_weight_over_limit_is_429_with_retry_after() -> None:
    rl = limiter(weight_per_minute=5)
    rl.check_ip("ip", 5, T0)
    with pytest.raises(RateLimited) as exc:
        rl.check_ip("ip", 1, T0)
    assert (exc.value.http_status, exc.value.code) == (429, -1003)
    assert exc.value.retry_after_s == 20
    assert exc.value.usage.headers()["X-MBX-USED-WEIGHT-1M"] == "6"


def test_orders_limits_per_account_10s_and_minute() -> None:
    rl = limiter(orders_per_10s=2, orders_per_minute=3)
    usage = rl.check_ip("ip", 0, T0)
    assert rl.check_orders("ip", "a", 1, 1, usage, T0).orders_10s == 1
    rl.check_orders("ip", "a", 1, 1, usage, T0)
    with pytest.raises(RateLimited) as exc:
        rl.check_orders("ip", "a", 1, 1, usage, T0)
    assert (exc.value.http_status, exc.value.code) == (429, -1015)
    assert "10 SECOND" in exc.value.msg
    headers = exc.value.usage.headers()
    assert headers["X-MBX-ORDER-COUNT-10S"] == "3" and headers["X-MBX-ORDER-COUNT-1M"] == "3"
    rl.check_orders("ip", "b", 1, 1, usage, T0)  # other account unaffected
    with pytest.raises(RateLimited) as exc:
        rl.check_orders("ip2", "a", 1, 1, usage, T0 + 10_000)
    assert "1 MINUTE" in exc.value.msg


def test_sending_after_429_earns_escalating_418_bans() -> None:
    rl = limiter(weight_per_minute=1, ban_after=2, ban_initial_s=120, ban_max_s=300)
    rl.check_ip("ip", 1, T0)
    with pytest.raises(RateLimited):
        rl.check_ip("ip", 1, T0)
    with pytest.raises(RateLimited) as exc:  # strike 1: still 429
        rl.check_ip("ip", 1, T0 + 1)
    assert exc.value.http_status == 429
    with pytest.raises(RateLimited) as exc:  # strike 2: banned
        rl.check_ip("ip", 1, T0 + 2)
    assert (exc.value.http_status, exc.value.code) == (418, -1003)
    assert exc.value.retry_after_s == 120 and "banned until" in exc.value.msg
    with pytest.raises(RateLimited) as exc:
        rl.check_ip("ip", 0, T0 + 60_000)
    assert exc.value.http_status == 418
    later = T0 + 121_000  # ban over, fresh window
    rl.check_ip("ip", 1, later)
    for offset in range(3):
        with pytest.raises(RateLimited) as exc:
            rl.check_ip("ip", 1, later + offset)
    assert exc.value.http_status == 418 and exc.value.retry_after_s == 240  # doubled
    second = later + 241_000
    rl.check_ip("ip", 1, second)
    for offset in range(3):
        with pytest.raises(RateLimited) as exc:
            rl.check_ip("ip", 1, second + offset)
    assert exc.value.retry_after_s == 300  # capped


def test_lifting_limits_clears_bans_and_never_refuses() -> None:
    rl = limiter(weight_per_minute=1, ban_after=1)
    rl.check_ip("ip", 1, T0)
    for _ in range(2):
        with pytest.raises(RateLimited):
            rl.check_ip("ip", 1, T0)
    rl.reconfigure(RateLimitConfig(enabled=False))
    for _ in range(50):
        usage = rl.check_ip("ip", 10, T0)
        rl.check_orders("ip", "a", 5, 1, usage, T0)
    assert usage.weight_1m == 500
    assert rl.usage("ip", "a", T0).orders_10s == 250


def test_exchange_info_limits_reflect_config() -> None:
    limits = limiter(weight_per_minute=7, orders_per_10s=8, orders_per_minute=9)
    assert {(x["interval"], x["limit"]) for x in limits.exchange_info_limits()} == {
        ("MINUTE", 7),
        ("MINUTE", 9),
        ("SECOND", 8),
    }


def test_repeated_order_429s_never_ban_by_default() -> None:
    """-1015 is the account's order limit; the venue documents 418 only for IP limits."""
    rl = limiter(orders_per_10s=1, ban_after=2)
    usage = rl.check_ip("ip", 0, T0)
    rl.check_orders("ip", "a", 1, 1, usage, T0)
    for _ in range(50):
        with pytest.raises(RateLimited) as exc:
            rl.check_orders("ip", "a", 1, 1, usage, T0)
        assert (exc.value.http_status, exc.value.code) == (429, -1015)
    assert rl.check_ip("ip", 1, T0).weight_1m == 1  # the IP is not banned


def test_orders_429_strikes_when_configured() -> None:
    rl = limiter(orders_per_10s=1, ban_after=2, orders_429_strikes=True)
    usage = rl.check_ip("ip", 0, T0)
    rl.check_orders("ip", "a", 1, 1, usage, T0)
    with pytest.raises(RateLimited):
        rl.check_orders("ip", "a", 1, 1, usage, T0)
    for _ in range(5):  # queries keep working: they are not new orders
        rl.check_ip("ip", 1, T0)
    with pytest.raises(RateLimited) as exc:  # strike 1
        rl.check_orders("ip", "a", 1, 1, usage, T0)
    assert exc.value.http_status == 429
    with pytest.raises(RateLimited) as exc:  # strike 2: the IP is banned
        rl.check_orders("ip", "a", 1, 1, usage, T0)
    assert exc.value.http_status == 418
    with pytest.raises(RateLimited) as exc:
        rl.check_ip("ip", 1, T0)
    assert exc.value.http_status == 418


def test_ban_message_carries_ban_until_in_ms() -> None:
    rl = limiter(weight_per_minute=1, ban_after=1)
    rl.check_ip("ip", 1, T0)
    with pytest.raises(RateLimited):
        rl.check_ip("ip", 1, T0)
    with pytest.raises(RateLimited) as exc:
        rl.check_ip("ip", 1, T0 + 5)
    assert exc.value.msg.startswith("Way too many requests; IP(ip) banned until ")
    assert f"banned until {T0 + 5 + 120_000}." in exc.value.msg
