"""The venue circuit breaker: stop sending new risk to a venue that keeps failing.

Why not a library. pybreaker's asyncio support is ``call_async``, which needs tornado;
its ``calling()`` context manager lets any number of calls through in half-open; its
clock is the wall clock (``datetime.now``) and cannot be injected; its Redis storage is
a blocking client. purgatory is async-native but also reads ``time.time()`` directly,
lets every call through in half-open and closes on the first success (no success
threshold), and has no notion of calls that must go through while open. Each needed
rewrapping most of its logic, so the breaker is this small table-driven state machine
(docs/pretrade.md); shared state across daemons (issue 8) can persist its few fields.

States: ``closed`` counts consecutive failures and opens at ``failure_threshold``;
``open`` refuses at once with BreakerOpenError for ``recovery_timeout_s``, then becomes
``half_open``, which lets ``half_open_max_requests`` probes run concurrently; a probe
failure reopens, ``success_threshold`` probe successes close. ``bypass=True`` calls
(cancels, reduce-only orders: a desk must be able to get flat) always run, take no probe
slot, and their outcomes count like any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from oexec.breaker.policy import Outcome, classify
from oexec.config import BreakerConfig
from oexec.errors import BreakerOpenError

log = logging.getLogger("oexec.breaker")

T = TypeVar("T")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

#: Every legal move: (state, what happened) -> next state. Nothing else moves the breaker.
TRANSITIONS: dict[tuple[str, str], str] = {
    (CLOSED, "failure_threshold_reached"): OPEN,
    (OPEN, "recovery_timeout_elapsed"): HALF_OPEN,
    (HALF_OPEN, "probe_failed"): OPEN,
    (HALF_OPEN, "success_threshold_reached"): CLOSED,
}


class VenueBreaker:
    """One breaker guarding one venue. ``state`` reflects the clock (open turns half_open
    when read after the recovery timeout)."""

    def __init__(
        self,
        config: BreakerConfig,
        *,
        name: str = "venue",
        on_state_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.name = name
        self._on_state_change = on_state_change
        self._clock = clock
        self._state = CLOSED
        self.failure_count = 0  # consecutive failures
        self.success_count = 0  # probe successes in this half-open period
        self._opened_at = 0.0
        self._probes = 0  # probes in flight in this half-open period
        self._epoch = 0  # bumps on every transition, so stale probes release nothing

    # -- state -----------------------------------------------------------------------
    @property
    def state(self) -> str:
        self._tick()
        return self._state

    def retry_after_s(self) -> float:
        """Seconds until an open breaker starts probing (0 when not open)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.recovery_timeout_s - self._clock())

    def _tick(self) -> None:
        elapsed = self._clock() - self._opened_at
        if self._state == OPEN and elapsed >= self.config.recovery_timeout_s:
            self._move("recovery_timeout_elapsed")

    def _move(self, event: str) -> None:
        old = self._state
        new = TRANSITIONS[(old, event)]
        self._state = new
        self._epoch += 1
        self._probes = 0
        self.success_count = 0
        if new == OPEN:
            self._opened_at = self._clock()
        if new == CLOSED:
            self.failure_count = 0
        log.warning("breaker %s: %s -> %s (%s)", self.name, old, new, event)
        if self._on_state_change is not None:
            try:
                self._on_state_change(old, new)
            except Exception:  # a metrics hook must never break trading
                log.exception("breaker %s: on_state_change hook failed", self.name)

    # -- calls -----------------------------------------------------------------------
    async def call(self, fn: Callable[[], Awaitable[T]], *, bypass: bool = False) -> T:
        """Run ``fn`` under the breaker. Raises BreakerOpenError without calling ``fn``
        when open (or half-open with every probe slot taken), unless ``bypass``."""
        self._tick()
        probe = self._admit(bypass)
        epoch = self._epoch
        try:
            result = await fn()
        except BaseException as exc:
            self._release(probe, epoch)
            self._record(classify(exc))
            raise
        self._release(probe, epoch)
        self._record(Outcome.SUCCESS)
        return result

    def _admit(self, bypass: bool) -> bool:
        """True when the call holds a half-open probe slot."""
        if bypass or self._state == CLOSED:
            return False
        if self._state == OPEN:
            raise self._refusal("open")
        if self._probes >= self.config.half_open_max_requests:
            raise self._refusal("half_open, probes in flight")
        self._probes += 1
        return True

    def _refusal(self, why: str) -> BreakerOpenError:
        details: dict[str, Any] = {
            "breaker": self.name,
            "state": self._state,
            "retry_after_s": round(self.retry_after_s(), 3),
        }
        return BreakerOpenError(f"venue circuit breaker {self.name} is {why}", details=details)

    def _release(self, probe: bool, epoch: int) -> None:
        if probe and epoch == self._epoch:
            self._probes -= 1

    def _record(self, outcome: Outcome) -> None:
        if outcome is Outcome.NEUTRAL:
            return
        self._tick()
        if outcome is Outcome.FAILURE:
            self._on_failure()
        else:
            self._on_success()

    def _on_failure(self) -> None:
        self.failure_count += 1
        if self._state == CLOSED and self.failure_count >= self.config.failure_threshold:
            self._move("failure_threshold_reached")
        elif self._state == HALF_OPEN:
            self._move("probe_failed")
        elif self._state == OPEN:
            self._opened_at = self._clock()  # still failing: restart the recovery wait

    def _on_success(self) -> None:
        if self._state == CLOSED:
            self.failure_count = 0
        elif self._state == HALF_OPEN:
            self.success_count += 1
            if self.success_count >= self.config.success_threshold:
                self._move("success_threshold_reached")
        # open: a bypass call got through; probing still decides when to close

    def snapshot(self) -> dict[str, float | str]:
        """For /health and metrics."""
        return {
            "state": self.state,
            "failure_count": self.failure_count,
            "success_count": self.success_count,
            "retry_after_s": self.retry_after_s(),
        }
