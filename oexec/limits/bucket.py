"""aiolimiter's leaky bucket, plus the two things a deadline-aware gate needs from it.

``AsyncLimiter`` answers "is there capacity now?" (``has_capacity``) and consumes it
(``acquire``), but a request with a deadline must know *when* capacity will be there,
so it can refuse at once instead of queueing past its deadline; and the venue's usage
headers must be able to raise the level. Both need the bucket's level, which aiolimiter
keeps in ``_level`` (maintained by ``_leak``); this subclass is the only place that
touches them, and tests/limits pins that behaviour against the installed aiolimiter.
"""

from __future__ import annotations

from aiolimiter import AsyncLimiter

from oexec.limits.windows import WindowSpec


class WindowBucket(AsyncLimiter):
    """One rate window as a leaky bucket: capacity ``spec.burst``, drain ``spec.rate_per_s``.

    Time is the running loop's clock, as in aiolimiter.
    """

    def __init__(self, spec: WindowSpec) -> None:
        super().__init__(max_rate=spec.burst, time_period=spec.burst / spec.rate_per_s)
        self.spec = spec

    def level(self) -> float:
        """Units in the bucket now (after draining)."""
        self._leak()
        return self._level

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0 when ``has_capacity(amount)``)."""
        excess = self.level() + amount - self.max_rate
        return max(0.0, excess) / self._rate_per_sec

    def take(self, amount: float) -> None:
        """Charge ``amount`` now, never waiting: for a caller that saw ``wait_s(amount)``
        at 0 in this loop step. aiolimiter's ``acquire`` would do the same without
        suspending (nobody ever waits inside aiolimiter here: the gate only charges a
        bucket with room), minus a coroutine and a waiter check per window."""
        self._leak()
        self._level += amount

    def raise_to(self, level: float) -> None:
        """Raise the level to ``level`` (never lower it: what we sent stays counted)."""
        self._leak()
        self._level = max(self._level, level)
