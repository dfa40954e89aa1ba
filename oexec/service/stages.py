"""What the order pipeline's stages share: their settings, the breaker and observer they
are handed, the request's own deadline, and the errors that prove a submit never left.

The stages themselves: ``admit.py`` (validation, risk, breaker/ban), ``claim.py`` (the
idempotency claim and the duplicate's wait), ``submit.py`` (the venue call), ``settle.py``
(the venue's answer stored, before or after the reply), ``cancels.py`` and ``queries.py``;
``pipeline.py`` composes them into the OrderService port.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import attrs

from oexec.errors import (
    BreakerOpenError,
    ErrorCode,
    OexecError,
    ThrottleError,
    VenueAuthError,
    VenueClockSkewError,
    VenueRateLimitError,
    VenueUnavailableError,
)
from oexec.models import Order

T = TypeVar("T")

#: Submit failures that prove the order never reached the matching engine.
NOT_SENT_ERRORS = (
    BreakerOpenError,
    ThrottleError,
    VenueUnavailableError,
    VenueRateLimitError,
    VenueAuthError,
    VenueClockSkewError,
)


@attrs.define
class PipelineSettings:
    idempotency_ttl_s: int = 86_400
    inline_resolve_s: float = 3.0  # how long a submit reply waits for an unknown outcome
    duplicate_wait_s: float = 15.0  # how long a duplicate waits for the first's outcome
    persist_before_reply: bool = False  # see settle.py


class Breaker(Protocol):
    """The slice of oexec.breaker.VenueBreaker the pipeline uses."""

    @property
    def state(self) -> str: ...

    async def call(self, fn: Callable[[], Awaitable[T]], *, bypass: bool = False) -> T: ...


class PipelineObserver(Protocol):
    """Where the pipeline reports what it measures (oexec.ops.metrics.Metrics fits)."""

    def stage(self, stage: str, seconds: float) -> None: ...

    def submission_latency(self, symbol: str, seconds: float) -> None: ...

    def cache_hit(self) -> None: ...

    def cache_miss(self) -> None: ...

    def validation_failure(self, rule: str) -> None: ...


class NullObserver:
    def stage(self, stage: str, seconds: float) -> None:
        return None

    def submission_latency(self, symbol: str, seconds: float) -> None:
        return None

    def cache_hit(self) -> None:
        return None

    def cache_miss(self) -> None:
        return None

    def validation_failure(self, rule: str) -> None:
        return None


@attrs.frozen
class Deadline:
    """A request's own deadline (the wire's ``deadline_ms``) on the monotonic clock.

    It bounds everything before the order is sent: admission, the claim and the wait for
    a rate-limit token. Once sent, the venue's answer is awaited regardless (an order
    in flight is never abandoned). ``at`` None: the request set no deadline, and the
    venue's default token wait applies.
    """

    at: float | None
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after_ms(
        cls, deadline_ms: int | None, clock: Callable[[], float] = time.monotonic
    ) -> Deadline:
        return cls(None if deadline_ms is None else clock() + deadline_ms / 1000, clock)

    def left_s(self) -> float | None:
        """Seconds left, or None without a deadline."""
        return None if self.at is None else self.at - self.clock()

    def check(self, before: str) -> None:
        """Raise DEADLINE_EXCEEDED (nothing sent) when the deadline has passed."""
        left = self.left_s()
        if left is not None and left <= 0:
            raise deadline_exceeded(before)


def deadline_exceeded(before: str, retry_after_s: float | None = None) -> ThrottleError:
    return ThrottleError(
        f"the request's deadline passed before {before}; not sent",
        code=ErrorCode.DEADLINE_EXCEEDED,
        retry_after_s=retry_after_s,
    )


def new_order_id(now_ms: int) -> str:
    """Time-ordered, unique across daemons: 12 hex digits of ms + 16 random hex digits."""
    return f"{now_ms:012x}{os.urandom(8).hex()}"


def error_from_order(order: Order) -> OexecError:
    """The error a rejected order answers with (its stored code and message)."""
    try:
        code = ErrorCode(order.error_code or ErrorCode.VENUE_REJECTED.value)
    except ValueError:
        code = ErrorCode.VENUE_REJECTED
    return OexecError(
        order.error_message or "order rejected",
        code=code,
        details={"order_id": order.id, "request_id": order.request_id},
    )
