"""Every breaker transition on a fake clock, and what counts as a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from oexec.breaker import CLOSED, HALF_OPEN, OPEN, TRANSITIONS, Outcome, VenueBreaker, classify
from oexec.config import BreakerConfig
from oexec.errors import (
    BreakerOpenError,
    ErrorCode,
    ThrottleError,
    ValidationError,
    VenueAuthError,
    VenueClockSkewError,
    VenueError,
    VenueOrderNotFoundError,
    VenueRateLimitError,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUnknownOutcomeError,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, **config: Any) -> None:
        self.clock = FakeClock()
        self.changes: list[tuple[str, str]] = []
        self.calls = 0
        self.breaker = VenueBreaker(
            BreakerConfig(**config),
            name="test",
            on_state_change=lambda old, new: self.changes.append((old, new)),
            clock=self.clock,
        )

    async def ok(self, *, bypass: bool = False) -> str:
        async def fn() -> str:
            self.calls += 1
            return "ok"

        return await self.breaker.call(fn, bypass=bypass)

    async def fail(self, exc: BaseException | None = None, *, bypass: bool = False) -> None:
        async def fn() -> None:
            self.calls += 1
            raise exc or VenueUnavailableError("down")

        with pytest.raises(type(exc or VenueUnavailableError("down"))):
            await self.breaker.call(fn, bypass=bypass)

    async def trip(self) -> None:
        for _ in range(self.breaker.config.failure_threshold):
            await self.fail()
        assert self.breaker.state == OPEN


async def test_plan_defaults() -> None:
    config = BreakerConfig()
    assert (
        config.failure_threshold,
        config.recovery_timeout_s,
        config.half_open_max_requests,
        config.success_threshold,
    ) == (5, 30.0, 3, 2)
    assert set(TRANSITIONS.values()) == {OPEN, HALF_OPEN, CLOSED}


async def test_closed_opens_after_consecutive_failures_only() -> None:
    h = Harness()
    for _ in range(4):
        await h.fail()
    assert await h.ok() == "ok"  # a success resets the streak
    assert h.breaker.failure_count == 0
    for _ in range(4):
        await h.fail()
    assert h.breaker.state == CLOSED
    await h.fail()
    assert h.breaker.state == OPEN
    assert h.changes == [(CLOSED, OPEN)]


async def test_open_refuses_at_once_without_calling() -> None:
    h = Harness()
    await h.trip()
    calls = h.calls
    h.clock.now += 10
    with pytest.raises(BreakerOpenError) as caught:
        await h.ok()
    assert h.calls == calls
    assert caught.value.code is ErrorCode.BREAKER_OPEN
    assert caught.value.details["retry_after_s"] == pytest.approx(20.0)
    assert h.breaker.retry_after_s() == pytest.approx(20.0)


async def test_open_turns_half_open_after_the_recovery_timeout() -> None:
    h = Harness()
    await h.trip()
    h.clock.now += 29.999
    assert h.breaker.state == OPEN
    h.clock.now += 0.001
    assert h.breaker.state == HALF_OPEN
    assert h.changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]
    assert h.breaker.retry_after_s() == 0


async def test_half_open_closes_after_enough_probe_successes() -> None:
    h = Harness()
    await h.trip()
    h.clock.now += 30
    await h.ok()
    assert h.breaker.state == HALF_OPEN and h.breaker.success_count == 1
    await h.ok()
    assert h.breaker.state == CLOSED
    assert h.breaker.failure_count == 0
    assert h.changes[-1] == (HALF_OPEN, CLOSED)


async def test_a_failed_probe_reopens_for_a_fresh_timeout() -> None:
    h = Harness()
    await h.trip()
    h.clock.now += 30
    await h.ok()
    await h.fail()
    assert h.breaker.state == OPEN
    assert h.changes[-1] == (HALF_OPEN, OPEN)
    h.clock.now += 29
    assert h.breaker.state == OPEN
    h.clock.now += 1
    assert h.breaker.state == HALF_OPEN


async def test_half_open_lets_only_a_few_probes_run_at_once() -> None:
    h = Harness()
    await h.trip()
    h.clock.now += 30
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "ok"

    probes = [asyncio.create_task(h.breaker.call(slow)) for _ in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(BreakerOpenError) as caught:
        await h.ok()
    assert caught.value.details["state"] == HALF_OPEN
    assert await h.ok(bypass=True) == "ok"  # bypass takes no probe slot, and its success counts
    assert h.breaker.success_count == 1
    gate.set()
    await asyncio.gather(*probes)
    assert h.breaker.state == CLOSED


async def test_a_cancelled_probe_frees_its_slot() -> None:
    h = Harness(half_open_max_requests=1)
    await h.trip()
    h.clock.now += 30
    probe = asyncio.create_task(h.breaker.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    with pytest.raises(BreakerOpenError):
        await h.ok()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert h.breaker.state == HALF_OPEN  # cancellation says nothing about the venue
    await h.ok()


async def test_bypass_goes_through_when_open_and_its_failures_restart_the_wait() -> None:
    h = Harness()
    await h.trip()
    h.clock.now += 20
    assert await h.ok(bypass=True) == "ok"
    assert h.breaker.state == OPEN  # one lucky cancel does not close the breaker
    await h.fail(bypass=True)
    h.clock.now += 29
    assert h.breaker.state == OPEN
    h.clock.now += 1
    assert h.breaker.state == HALF_OPEN


async def test_bypass_failures_count_when_closed() -> None:
    h = Harness(failure_threshold=2)
    await h.fail(bypass=True)
    await h.fail(bypass=True)
    assert h.breaker.state == OPEN


async def test_business_rejections_never_trip_it() -> None:
    h = Harness(failure_threshold=1)
    for exc in (
        VenueRejectedError("no", venue_code=-2019),
        VenueOrderNotFoundError("unknown order", venue_code=-2013),
        VenueAuthError("bad key", venue_code=-2015),
        VenueClockSkewError("skew", venue_code=-1021),
        ValidationError("qty", code=ErrorCode.QTY_STEP),
        VenueRateLimitError("429", retry_after_s=5, http_status=429),
        ThrottleError("local"),
        ValueError("a bug"),
    ):
        await h.fail(exc)
    assert h.breaker.state == CLOSED


async def test_a_rejection_in_half_open_counts_as_a_probe_success() -> None:
    h = Harness()
    await h.trip()
    h.clock.now += 30
    await h.fail(VenueRejectedError("no"))
    await h.fail(VenueRejectedError("no"))
    assert h.breaker.state == CLOSED


async def test_a_429_in_half_open_is_neutral() -> None:
    h = Harness()
    await h.trip()
    h.clock.now += 30
    await h.fail(VenueRateLimitError("429", retry_after_s=1))
    assert h.breaker.state == HALF_OPEN and h.breaker.success_count == 0


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (None, Outcome.SUCCESS),
        (VenueUnavailableError("refused"), Outcome.FAILURE),
        (VenueUnknownOutcomeError("timeout"), Outcome.FAILURE),
        (TimeoutError(), Outcome.FAILURE),
        (ConnectionResetError(), Outcome.FAILURE),
        (VenueError("plain"), Outcome.FAILURE),
        (VenueError("plain", code=ErrorCode.VENUE_REJECTED), Outcome.NEUTRAL),
        (VenueRejectedError("no"), Outcome.SUCCESS),
        (VenueAuthError("key"), Outcome.SUCCESS),
        (ValidationError("x"), Outcome.SUCCESS),
        (VenueRateLimitError("418", retry_after_s=120), Outcome.NEUTRAL),
        (BreakerOpenError("open"), Outcome.NEUTRAL),
        (asyncio.CancelledError(), Outcome.NEUTRAL),
        (RuntimeError("bug"), Outcome.NEUTRAL),
    ],
)
def test_classification_table(exc: BaseException | None, outcome: Outcome) -> None:
    assert classify(exc) is outcome


async def test_a_broken_state_hook_does_not_break_the_breaker() -> None:
    def hook(old: str, new: str) -> None:
        raise RuntimeError("metrics down")

    breaker = VenueBreaker(BreakerConfig(failure_threshold=1), on_state_change=hook)
    with pytest.raises(VenueUnavailableError):
        await breaker.call(_raiser(VenueUnavailableError("down")))
    assert breaker.state == OPEN
    assert breaker.snapshot()["state"] == OPEN


def _raiser(exc: BaseException) -> Callable[[], Awaitable[None]]:
    async def fn() -> None:
        raise exc

    return fn
