"""The rate gate on a virtual clock: windows, deadlines, header correction, pauses."""

from __future__ import annotations

import asyncio
import bisect
from decimal import Decimal
from typing import Any

import pytest

from oexec.config import LimitsConfig
from oexec.errors import ErrorCode, ThrottleError
from oexec.limits import VenueRateLimiter
from oexec.limits.bucket import WindowBucket
from oexec.limits.windows import WindowSpec, level_for_count
from oexec.models import RateLimitRule
from oexec.venue.binance.policy import RATE_WINDOWS as DEFAULT_VENUE_RULES
from oexec.venue.binance.policy import window_ages

from .conftest import VirtualClock

D = Decimal
#: 10 orders per 10 s, half of them at once, the rest draining at 0.5/s.
SMALL = (RateLimitRule("ORDERS", 10, 10),)


def small(clock: VirtualClock, **config: Any) -> VenueRateLimiter:
    settings = {"safety_margin": D(1), "burst_fraction": D("0.5"), **config}
    limiter = VenueRateLimiter(
        LimitsConfig(**settings), rules=DEFAULT_VENUE_RULES, clock=clock.time
    )
    limiter.configure(SMALL)
    return limiter


def used(limiter: VenueRateLimiter, window: str = "orders_10s") -> float:
    return limiter.snapshot()[window]["used"]


async def order(limiter: VenueRateLimiter, deadline_s: float | None = 100.0) -> None:
    await limiter.acquire(weight=0, orders=1, deadline_s=deadline_s)


async def test_within_the_burst_nothing_waits_and_every_window_is_charged(
    virtual_loop: VirtualClock,
) -> None:
    limiter = VenueRateLimiter(LimitsConfig(), rules=DEFAULT_VENUE_RULES, clock=virtual_loop.time)
    start = virtual_loop.now
    await limiter.acquire(weight=5, orders=1, deadline_s=0)
    await limiter.acquire(weight=2, orders=0, deadline_s=0)  # a query or cancel
    assert virtual_loop.now == start
    snap = limiter.snapshot()
    assert (snap["weight_1m"]["used"], snap["orders_10s"]["used"], snap["orders_1m"]["used"]) == (
        7,
        1,
        1,
    )
    assert snap["orders_10s"]["limit"] == 240 and snap["orders_10s"]["venue_limit"] == 300


async def test_a_request_that_would_be_late_is_refused_at_once_without_consuming(
    virtual_loop: VirtualClock,
) -> None:
    limiter = small(virtual_loop)
    for _ in range(5):
        await order(limiter, deadline_s=0)
    start = virtual_loop.now
    with pytest.raises(ThrottleError) as caught:
        await order(limiter, deadline_s=1.0)
    assert caught.value.code is ErrorCode.RATE_LIMITED
    assert caught.value.retry_after_s == pytest.approx(2.0)
    assert caught.value.details["window"] == "orders_10s"
    assert virtual_loop.now == start
    assert used(limiter) == pytest.approx(5)
    await order(limiter, deadline_s=2.5)  # 2 s of draining frees one token
    assert virtual_loop.now - start == pytest.approx(2.0, abs=0.01)


async def test_refusal_counts_the_queue_ahead(virtual_loop: VirtualClock) -> None:
    limiter = small(virtual_loop)
    for _ in range(5):
        await order(limiter, deadline_s=0)
    waiting = [asyncio.create_task(order(limiter)) for _ in range(3)]
    await asyncio.sleep(0)
    start = virtual_loop.now
    with pytest.raises(ThrottleError) as caught:
        await order(limiter, deadline_s=5.0)  # 3 ahead + itself = 8 s of draining
    assert caught.value.retry_after_s == pytest.approx(8.0)
    assert virtual_loop.now == start
    await asyncio.gather(*waiting)
    assert virtual_loop.now - start == pytest.approx(6.0, abs=0.01)


async def test_waiters_are_served_first_in_first_out(virtual_loop: VirtualClock) -> None:
    limiter = small(virtual_loop)
    done: list[int] = []

    async def numbered(n: int) -> None:
        await order(limiter)
        done.append(n)

    await asyncio.gather(*(numbered(n) for n in range(12)))
    assert done == list(range(12))


async def test_a_request_arriving_when_room_returns_does_not_overtake_a_waiter(
    virtual_loop: VirtualClock,
) -> None:
    limiter = small(virtual_loop)
    for _ in range(5):  # the burst
        await order(limiter, deadline_s=0)
    done: list[str] = []

    async def named(name: str) -> None:
        await order(limiter)
        done.append(name)

    first = asyncio.create_task(named("first"))
    await asyncio.sleep(0)  # queued, sleeping until a token drains (2 s)
    virtual_loop.advance(2.5)  # room for one now, before the waiter has woken
    await named("second")  # must queue behind it, not take the token at once
    await first
    assert done == ["first", "second"]


async def test_a_cancelled_waiter_leaves_the_queue(virtual_loop: VirtualClock) -> None:
    limiter = small(virtual_loop)
    for _ in range(5):
        await order(limiter, deadline_s=0)
    waiter = asyncio.create_task(order(limiter))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await order(limiter, deadline_s=2.5)  # nobody ahead any more


async def test_a_deadline_that_passes_in_the_queue_raises_rate_limited(
    virtual_loop: VirtualClock,
) -> None:
    limiter = small(virtual_loop)
    for _ in range(5):
        await order(limiter, deadline_s=0)
    first = asyncio.create_task(order(limiter, deadline_s=100))
    second = asyncio.create_task(order(limiter, deadline_s=5.0))  # 4 s expected: admitted
    await asyncio.sleep(0)
    start = virtual_loop.now
    limiter.observe({("ORDERS", 10): 10})  # someone else used the window: the head waits 12 s
    with pytest.raises(ThrottleError) as caught:
        await second
    assert caught.value.code is ErrorCode.RATE_LIMITED
    assert virtual_loop.now - start == pytest.approx(5.0, abs=0.01)
    await first
    assert virtual_loop.now - start == pytest.approx(12.0, abs=0.01)


async def test_a_request_larger_than_the_burst_is_refused(virtual_loop: VirtualClock) -> None:
    limiter = small(virtual_loop)
    with pytest.raises(ThrottleError) as caught:
        await limiter.acquire(weight=0, orders=6, deadline_s=100)
    assert caught.value.details == {"window": "orders_10s", "amount": 6}


async def test_no_deadline_means_the_configured_default(virtual_loop: VirtualClock) -> None:
    limiter = small(virtual_loop, default_deadline_ms=1000)
    for _ in range(5):
        await order(limiter, deadline_s=0)
    with pytest.raises(ThrottleError):
        await order(limiter, deadline_s=None)


def admissions_in_windows(times: list[float], interval: float) -> int:
    """The most admissions in any half-open window [t, t + interval)."""
    return max(bisect.bisect_left(times, t + interval) - i for i, t in enumerate(times))


async def test_a_burst_of_ten_times_the_limit_never_exceeds_any_window(
    virtual_loop: VirtualClock,
) -> None:
    limiter = VenueRateLimiter(LimitsConfig(), rules=DEFAULT_VENUE_RULES, clock=virtual_loop.time)
    limiter.configure(DEFAULT_VENUE_RULES)
    times: list[float] = []

    async def send() -> None:
        await limiter.acquire(weight=1, orders=1, deadline_s=3600)
        times.append(virtual_loop.now)

    await asyncio.gather(*(send() for _ in range(3000)))  # 10 × the 300 / 10 s limit
    times.sort()
    assert len(times) == 3000
    assert admissions_in_windows(times, 10) <= 240
    assert admissions_in_windows(times, 60) <= 960
    # and the limiter does not starve the burst: the 1-minute window drains at 12/s
    assert times[-1] - times[0] == pytest.approx((3000 - 240) / 12, rel=0.01)


async def test_unexplained_venue_usage_raises_the_level(virtual_loop: VirtualClock) -> None:
    limiter = small(virtual_loop)  # as after a restart: we sent nothing
    limiter.observe({("ORDERS", 10): 8})
    assert used(limiter) == pytest.approx(8)
    with pytest.raises(ThrottleError) as caught:
        await order(limiter, deadline_s=0)
    assert caught.value.retry_after_s == pytest.approx(8.0)  # (8 + 1 - 5) / 0.5
    assert limiter.snapshot()["orders_10s"]["venue_used"] == 8


async def test_a_fixed_window_count_counts_only_for_the_rest_of_its_window(
    virtual_loop: VirtualClock,
) -> None:
    """The venue's windows are fixed: 8 orders counted 7 s into a 10 s window leave
    2 for its last 3 s and a whole window after it, not "8 just spent" (a daemon
    restarted late in a busy minute had no weight for 30 s)."""
    limiter = small(virtual_loop)  # 10 per 10 s: burst 5, then 0.5/s
    limiter.observe({("ORDERS", 10): 8}, {("ORDERS", 10): 7.0})
    # level 8 - 0.5 x (7 - 1 s margin) = 5: the burst is used, the drain goes on
    assert used(limiter) == pytest.approx(5)
    with pytest.raises(ThrottleError) as caught:
        await order(limiter, deadline_s=0)
    assert caught.value.retry_after_s == pytest.approx(2.0)  # not 8 s as without the age
    start = virtual_loop.now
    for _ in range(2):  # what the window still allows, sent before it ends
        await order(limiter, deadline_s=10)
    assert virtual_loop.now - start <= 4.0 + 0.01


def test_a_window_count_maps_to_a_level_that_leaves_what_the_venue_allows() -> None:
    """l = count - r x (age - margin), never below 0; unknown age: the count itself."""
    assert level_for_count(1200, 24.0, None) == 1200
    assert level_for_count(1200, 24.0, 30.0) == pytest.approx(1200 - 24 * 29)
    assert level_for_count(100, 24.0, 59.0) == 0
    assert level_for_count(100, 24.0, 0.5) == 100  # within the margin: all of it


async def test_usage_we_sent_ourselves_does_not_throttle_twice(
    virtual_loop: VirtualClock,
) -> None:
    limiter = small(virtual_loop)
    for _ in range(5):
        await order(limiter, deadline_s=0)
    virtual_loop.advance(4)  # drained to 3
    limiter.observe({("ORDERS", 10): 5})  # the venue's window still holds our 5
    assert used(limiter) == pytest.approx(3)
    await order(limiter, deadline_s=0)


async def test_the_level_is_never_lowered_and_is_capped_at_one_window(
    virtual_loop: VirtualClock,
) -> None:
    limiter = small(virtual_loop)
    for _ in range(4):
        await order(limiter, deadline_s=0)
    limiter.observe({("ORDERS", 10): 1})
    assert used(limiter) == pytest.approx(4)
    limiter.observe({("ORDERS", 10): 10_000})
    assert used(limiter) == pytest.approx(10)
    with pytest.raises(ThrottleError) as caught:
        await order(limiter, deadline_s=0)
    assert caught.value.retry_after_s == pytest.approx(12.0)  # one full window and a token


async def test_headers_for_windows_we_do_not_enforce_are_ignored(
    virtual_loop: VirtualClock,
) -> None:
    limiter = small(virtual_loop)
    limiter.observe({("REQUEST_WEIGHT", 60): 10_000, ("ORDERS", 60): 10_000})
    await order(limiter, deadline_s=0)


async def test_a_pause_fails_fast_or_waits_within_the_deadline(
    virtual_loop: VirtualClock,
) -> None:
    limiter = small(virtual_loop)
    limiter.pause(30)
    limiter.pause(5)  # never shortens
    assert limiter.paused_for() == pytest.approx(30)
    start = virtual_loop.now
    for weight, orders in ((0, 1), (1, 0), (0, 0)):
        with pytest.raises(ThrottleError) as caught:
            await limiter.acquire(weight=weight, orders=orders, deadline_s=1)
        assert caught.value.code is ErrorCode.VENUE_BANNED
        assert caught.value.retry_after_s == pytest.approx(30)
    assert virtual_loop.now == start
    assert used(limiter) == 0
    await limiter.acquire(weight=0, orders=0, deadline_s=31)
    assert virtual_loop.now - start == pytest.approx(30)
    assert limiter.paused_for() == 0
    limiter.pause(10)
    await order(limiter, deadline_s=11)
    assert virtual_loop.now - start == pytest.approx(40, abs=0.01)


async def test_reconfigure_keeps_what_was_used(virtual_loop: VirtualClock) -> None:
    limiter = small(virtual_loop)
    for _ in range(5):
        await order(limiter, deadline_s=0)
    limiter.configure([RateLimitRule("ORDERS", 10, 100)])
    assert used(limiter) == pytest.approx(5)
    assert limiter.snapshot()["orders_10s"]["limit"] == 100


def test_snapshot_outside_a_loop_reports_zero_usage() -> None:
    snap = VenueRateLimiter(LimitsConfig(), rules=DEFAULT_VENUE_RULES).snapshot()
    assert snap["orders_10s"]["used"] == 0.0
    assert snap["weight_1m"]["venue_used"] == -1


async def test_bucket_agrees_with_aiolimiter_capacity(virtual_loop: VirtualClock) -> None:
    # Pins the private aiolimiter state the bucket relies on (_level, _leak).
    bucket = WindowBucket(WindowSpec(kind="ORDERS", interval_s=10, limit=10, burst=5))
    await bucket.acquire(5)
    assert bucket.level() == pytest.approx(5)
    assert not bucket.has_capacity(1)
    assert bucket.wait_s(1) == pytest.approx(2.0)
    virtual_loop.advance(2.0)
    assert bucket.has_capacity(1) and bucket.wait_s(1) == 0
    bucket.raise_to(1)
    assert bucket.level() == pytest.approx(4)
    bucket.raise_to(7)
    assert bucket.level() == pytest.approx(7)
    assert not bucket.has_capacity(0)


def test_binance_window_ages_follow_the_venue_clock() -> None:
    """Binance's counters reset at the top of each window of the venue's clock."""
    ages = window_ages({("REQUEST_WEIGHT", 60): 5, ("ORDERS", 10): 1}, 123_456_789)
    assert ages == {("REQUEST_WEIGHT", 60): 36.789, ("ORDERS", 10): 6.789}
