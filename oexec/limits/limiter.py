"""The client-side view of the venue's rate limits (implements ports.RequestGate).

One aiolimiter bucket per venue window (orders/10 s, orders/min, weight/min by default;
sized in windows.py so no window of the venue's length can see more than the limit).

- ``acquire`` takes tokens from every window the request counts against, atomically:
  either all windows have room now and all are charged, or nothing is charged. If room
  will not come before the request's deadline it raises ThrottleError(RATE_LIMITED) at
  once, with ``retry_after_s``: a request is refused rather than sent late.
- ``observe`` reads the venue's usage headers. Usage we did not send ourselves (another
  process on the account, our own previous life before a restart) shows as a count above
  what we sent in the last window; then the bucket is raised to the venue's count, so
  the next burst respects it. The level is never lowered below what we sent.
- ``pause`` after a 429/418: every acquire fails fast with VENUE_BANNED and the
  remaining time, or waits if the pause ends within its deadline.

Per process. The scale-out design (issue 8) puts a Redis-side limiter behind the same
RequestGate port, with this one kept as the local fast path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from oexec.config import LimitsConfig
from oexec.errors import ErrorCode, ThrottleError
from oexec.limits.bucket import WindowBucket
from oexec.limits.windows import (
    WindowKey,
    amount_for,
    level_for_count,
    plan_windows,
)
from oexec.models import RateLimitRule

log = logging.getLogger("oexec.limits")

#: Shortest sleep while waiting for tokens: keeps float rounding from spinning.
MIN_SLEEP_S = 0.001

Need = tuple[WindowKey, int]  # a window and how many of its units a request takes


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def banned_error(remaining: float) -> ThrottleError:
    """The refusal while the venue has paused us (429/418): typed, with the time left."""
    return ThrottleError(
        f"venue traffic paused for another {remaining:.1f}s after a 429/418",
        code=ErrorCode.VENUE_BANNED,
        retry_after_s=remaining,
        details={"retry_after_s": round(remaining, 3)},
    )


class VenueRateLimiter:
    """Deadline-aware, header-corrected, pausable rate gate for one venue account/IP.

    ``clock`` must tick with the running loop's clock (asyncio's default loop uses
    ``time.monotonic``); only differences of it are used.
    """

    def __init__(
        self,
        config: LimitsConfig,
        *,
        rules: Sequence[RateLimitRule] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self._buckets: dict[WindowKey, WindowBucket] = {}
        self._sent: dict[WindowKey, deque[tuple[float, int]]] = {}  # (time, amount) we sent
        self._sent_total: dict[WindowKey, int] = {}  # sum of the amounts in _sent
        self._venue_used: dict[WindowKey, int] = {}
        self._paused_until = float("-inf")
        self._lanes: dict[frozenset[WindowKey], asyncio.Lock] = {}  # FIFO per window set
        self._queued: dict[WindowKey, int] = {}  # units waiting in lanes, per window
        # (weight, orders) -> the windows it takes and its lane; rebuilt by configure
        self._plans: dict[tuple[int, int], tuple[list[Need], frozenset[WindowKey]]] = {}
        # the venue's published windows (VenuePolicy.rate_windows) until its exchange
        # info is loaded; none given: only the configured caps
        self.configure(rules)

    # -- configuration ---------------------------------------------------------------
    def configure(self, rules: Sequence[RateLimitRule]) -> None:
        """(Re)build the windows from exchangeInfo's rateLimits × margin, capped by config.

        Usage already counted carries over, so a refresh never frees tokens.
        """
        carry = _in_loop()
        buckets: dict[WindowKey, WindowBucket] = {}
        for spec in plan_windows(rules, self.config):
            bucket = WindowBucket(spec)
            old = self._buckets.get(spec.key)
            if old is not None and carry:
                bucket.raise_to(min(old.level(), float(spec.limit)))
            buckets[spec.key] = bucket
            self._sent.setdefault(spec.key, deque())
        self._buckets = buckets
        self._plans = {}
        log.info(
            "rate windows (limit/burst): %s",
            ", ".join(f"{b.spec.name}={b.spec.limit}/{b.spec.burst}" for b in buckets.values()),
        )

    # -- the gate --------------------------------------------------------------------
    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None:
        """Wait for tokens in every window this request counts against, or refuse at once.

        ``deadline_s``: how long from now the request may wait (None: the configured
        default). Raises ThrottleError RATE_LIMITED (tokens would come too late, or the
        request is larger than a window's burst) or VENUE_BANNED (paused after 429/418).

        Requests needing the same windows queue first-in first-out in one lane, and only
        the lane's head sleeps for tokens (no thundering herd on a burst). The at-once
        refusal counts what is queued ahead, so a request that will not make it is told
        so before it waits at all.
        """
        needs, lane_key = self._plan(weight, orders)
        if self._take_at_once(needs):
            return
        budget = self.config.default_deadline_ms / 1000 if deadline_s is None else deadline_s
        deadline = self._clock() + max(0.0, budget)
        self._refuse_if_late(needs, deadline, ahead=True)
        if not needs:
            await self._wait_for_pause(deadline)
            return
        lane = self._lanes.setdefault(lane_key, asyncio.Lock())
        self._queue(needs, +1)  # counted as ahead of later arrivals until charged or gone
        try:
            try:
                async with asyncio.timeout(max(0.0, deadline - self._clock())):
                    await lane.acquire()
            except TimeoutError:
                raise self._late(needs) from None
            try:
                await self._wait_and_take(needs, deadline)
            finally:
                lane.release()
        finally:
            self._queue(needs, -1)

    def _plan(self, weight: int, orders: int) -> tuple[list[Need], frozenset[WindowKey]]:
        """The windows a request takes and its lane, computed once per request shape."""
        plan = self._plans.get((weight, orders))
        if plan is None:
            needs = self._needs(weight, orders)  # raises for a request above a burst
            plan = self._plans[(weight, orders)] = (needs, frozenset(k for k, _ in needs))
        return plan

    def _take_at_once(self, needs: list[Need]) -> bool:
        """The common case, without a lane, a timeout or a suspension: not paused, nothing
        queued on any of these windows (so this lane is empty too) and room in each.
        Exactly what the queued path would do then, which charges without waiting."""
        if self._paused_until > self._clock():
            return False
        for key, amount in needs:
            if self._queued.get(key) or self._buckets[key].wait_s(amount) > 0:
                return False
        self._take(needs)
        return True

    def _needs(self, weight: int, orders: int) -> list[Need]:
        needs: list[Need] = []
        for key, bucket in self._buckets.items():
            amount = amount_for(bucket.spec, weight=weight, orders=orders)
            if amount <= 0:
                continue
            if amount > bucket.max_rate:
                raise ThrottleError(
                    f"request of {amount} exceeds the {bucket.spec.name} burst {bucket.spec.burst}",
                    code=ErrorCode.RATE_LIMITED,
                    details={"window": bucket.spec.name, "amount": amount},
                )
            needs.append((key, amount))
        return needs

    def _queue(self, needs: list[Need], sign: int) -> None:
        for key, amount in needs:
            self._queued[key] = self._queued.get(key, 0) + sign * amount

    def _wait(self, needs: list[Need], *, ahead: bool) -> tuple[float, str]:
        """The longest wait among the windows (counting queued requests if ``ahead``)."""
        wait, window = 0.0, ""
        for key, amount in needs:
            bucket = self._buckets.get(key)
            if bucket is None:  # window dropped by a reconfigure
                continue
            queued = self._queued.get(key, 0) if ahead else 0
            this = bucket.wait_s(amount + queued)
            if this > wait:
                wait, window = this, bucket.spec.name
        return wait, window

    def _refuse_if_late(self, needs: list[Need], deadline: float, *, ahead: bool) -> float:
        """Raise if the pause or the tokens come after ``deadline``; else the wait."""
        now = self._clock()
        paused = self._paused_until - now
        if paused > 0 and now + paused > deadline:
            raise banned_error(paused)
        wait, window = self._wait(needs, ahead=ahead)
        wait = max(wait, paused)
        if now + wait > deadline:
            raise ThrottleError(
                f"rate window {window} has no room before the deadline",
                code=ErrorCode.RATE_LIMITED,
                retry_after_s=wait,
                details={"window": window, "retry_after_s": round(wait, 3)},
            )
        return wait

    def _late(self, needs: list[Need]) -> ThrottleError:
        wait, window = self._wait(needs, ahead=True)
        return ThrottleError(
            f"rate window {window} had no room before the deadline",
            code=ErrorCode.RATE_LIMITED,
            retry_after_s=wait,
            details={"window": window, "retry_after_s": round(wait, 3)},
        )

    async def _wait_for_pause(self, deadline: float) -> None:
        paused = self.paused_for()
        if paused > 0:
            self._refuse_if_late([], deadline, ahead=False)
            await asyncio.sleep(paused)

    async def _wait_and_take(self, needs: list[Need], deadline: float) -> None:
        """At the head of the lane: sleep until every window has room, then charge them."""
        while True:
            wait = self._refuse_if_late(needs, deadline, ahead=False)
            if wait <= 0:
                self._take(needs)
                return
            await asyncio.sleep(max(wait, MIN_SLEEP_S))

    def _take(self, needs: list[Need]) -> None:
        # Every bucket has capacity (checked just now, same loop step), so all windows
        # are charged together, without a suspension between them.
        now = self._clock()
        for key, amount in needs:
            bucket = self._buckets.get(key)
            if bucket is None:
                continue
            bucket.take(amount)
            self._sent_total[key] = self._sent_within(key, bucket.spec.interval_s) + amount
            self._sent[key].append((now, amount))

    # -- venue feedback --------------------------------------------------------------
    def observe(
        self,
        used: Mapping[WindowKey, int],
        window_age_s: Mapping[WindowKey, float] | None = None,
    ) -> None:
        """Correct the local view with the venue's own count of each window it reported
        (``{(kind, interval_s): used}``; ``window_age_s``: how old each fixed window is,
        see ``level_for_count``); windows not enforced here are ignored."""
        ages = window_age_s or {}
        for key, count in used.items():
            bucket = self._buckets.get(key)
            if bucket is None:
                continue
            self._venue_used[key] = count
            if count > self._sent_within(key, bucket.spec.interval_s):
                level = level_for_count(count, bucket.spec.rate_per_s, ages.get(key))
                bucket.raise_to(min(level, float(bucket.spec.limit)))

    def sent_in_window(self, key: WindowKey) -> int:
        """What this process charged to ``key`` within its interval."""
        bucket = self._buckets.get(key)
        return 0 if bucket is None else self._sent_within(key, bucket.spec.interval_s)

    def _sent_within(self, key: WindowKey, interval_s: int) -> int:
        """What we charged to ``key`` in the last ``interval_s`` (older entries dropped)."""
        sent = self._sent[key]
        horizon = self._clock() - interval_s
        total = self._sent_total.get(key, 0)
        while sent and sent[0][0] <= horizon:
            total -= sent.popleft()[1]
        self._sent_total[key] = total
        return total

    def pause(self, retry_after_s: float) -> None:
        """Stop all traffic for ``retry_after_s`` (429/418 Retry-After); never shortens a pause."""
        until = self._clock() + max(0.0, retry_after_s)
        if until > self._paused_until:
            self._paused_until = until
            log.warning("venue traffic paused for %.1fs", retry_after_s)

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    # -- observability ---------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, float]]:
        """Per window: ``used`` (bucket level now), ``limit``, ``burst``, ``venue_used``
        (last header value, -1 if none), ``venue_limit``."""
        live = _in_loop()
        return {
            bucket.spec.name: {
                "used": bucket.level() if live else 0.0,
                "limit": float(bucket.spec.limit),
                "burst": float(bucket.spec.burst),
                "venue_used": float(self._venue_used.get(key, -1)),
                "venue_limit": float(bucket.spec.venue_limit),
            }
            for key, bucket in self._buckets.items()
        }
