"""The venue breaker, shared by every daemon on one Redis: one opens it, all stop.

Why not pybreaker's ``CircuitRedisState``: it is a blocking redis client on the order
path, and pybreaker lacks what VenueBreaker has (probe slots, bypass for reduce-only
and cancels, an injectable clock; see breaker.py). So the local state machine stays
and shares the two facts that matter across daemons:

- consecutive venue failures, counted in Redis by every daemon (``INCR``; any success
  while closed resets it), so 5 failures spread over 3 daemons open the breaker as
  one daemon would. A success deletes the count only when there may be one: this
  daemon counted a failure, or the last read (every ``sync_s``, with the open state)
  saw one. A DEL on every success was a Redis round trip per order (~95 µs of client
  CPU); a count another daemon started since the last read survives a success by at
  most ``sync_s``;
- "open until T": the daemon that opens writes ``<prefix>{breaker}:<name>`` with the
  recovery timeout as its TTL. Every daemon reads it every ``sync_s`` (off the order
  path) and opens locally for the time left. Half-open probing stays per daemon: each
  probes after the timeout and closes on its own successes; a daemon that closes clears
  the shared failures.

Redis writes happen in the background and a Redis failure never blocks or fails a
call: the breaker then degrades to the per-daemon one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oexec.breaker.breaker import CLOSED, OPEN, VenueBreaker
from oexec.config import BreakerConfig
from oexec.store.keys import ClusterKeys
from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.breaker.shared")

REDIS_FAILURES = (RedisError, OSError, TimeoutError)

#: KEYS = failures, open; ARGV = threshold, open_ms. Counts one failure; opens the shared
#: breaker at the threshold. Returns the open key's remaining ms (0: not open).
FAILURE = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if n >= tonumber(ARGV[1]) and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
end
return math.max(0, redis.call('PTTL', KEYS[2]))
"""


class SharedVenueBreaker(VenueBreaker):
    """A VenueBreaker whose failure count and open state are shared through Redis."""

    def __init__(
        self,
        config: BreakerConfig,
        redis: aioredis.Redis,
        *,
        prefix: str,
        name: str = "venue",
        sync_s: float = 0.25,
        on_state_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, name=name, on_state_change=on_state_change, clock=clock)
        self._redis = redis
        keys = ClusterKeys(prefix)
        self._failures_key = keys.breaker_failures(name)
        self._open_key = keys.breaker_open(name)
        self._sync_s = sync_s
        self._failure = redis.register_script(FAILURE)
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._following = False  # moving because another daemon opened: do not echo
        #: whether the shared failure count may be above zero (unknown at start)
        self._failures_maybe = True

    @property
    def _open_ms(self) -> int:
        return max(1, int(self.config.recovery_timeout_s * 1000))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sync_loop())

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._background) if t is not None]
        await cancel_and_wait(tasks)
        self._task = None

    # -- local events, shared ------------------------------------------------------------
    def _on_failure(self) -> None:
        super()._on_failure()
        self._spawn(self._share_failure())

    def _on_success(self) -> None:
        was_closed = self._state == CLOSED
        super()._on_success()
        if was_closed and self._failures_maybe:
            self._failures_maybe = False
            self._spawn(self._redis.delete(self._failures_key))

    def _move(self, event: str) -> None:
        super()._move(event)
        if self._following:
            return
        if self._state == OPEN:
            self._spawn(self._redis.set(self._open_key, "1", px=self._open_ms))
        elif self._state == CLOSED:
            self._spawn(self._redis.delete(self._failures_key, self._open_key))

    async def _share_failure(self) -> None:
        self._failures_maybe = True
        remaining = await self._failure(
            keys=[self._failures_key, self._open_key],
            args=[self.config.failure_threshold, self._open_ms],
        )
        self._follow(int(remaining) / 1000)

    # -- other daemons' events -----------------------------------------------------------
    async def sync(self) -> None:
        """Read the shared open state (and whether failures are counted) once; follow it."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.pttl(self._open_key)
            pipe.exists(self._failures_key)
            remaining, counted = await pipe.execute()
        if counted:
            self._failures_maybe = True
        self._follow(max(0, int(remaining)) / 1000)

    def _follow(self, remaining_s: float) -> None:
        """Open locally for ``remaining_s`` when another daemon opened the breaker."""
        if remaining_s <= 0 or self._state != CLOSED:
            return
        self._following = True
        try:
            self._move("failure_threshold_reached")
        finally:
            self._following = False
        # open only for what is left of the shared recovery timeout
        self._opened_at = self._clock() - (self.config.recovery_timeout_s - remaining_s)
        log.warning("breaker %s opened by another daemon (%.1fs left)", self.name, remaining_s)

    async def _sync_loop(self) -> None:
        while True:
            try:
                await self.sync()
            except REDIS_FAILURES as exc:
                log.debug("breaker sync: redis unavailable: %r", exc)
            await asyncio.sleep(self._sync_s)

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._quietly(coro))
        except RuntimeError:
            coro.close()
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _quietly(coro: Any) -> None:
        try:
            await coro
        except REDIS_FAILURES as exc:
            log.warning("breaker: shared state not written: %r", exc)
