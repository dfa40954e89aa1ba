"""One rate limiter for every daemon on a venue account: leaky buckets kept in Redis.

Why. Per-process buckets multiply the real rate by the number of daemons and earn a
429, then a 418 ban. Here each venue window (orders/10 s, orders/min, weight/min) is one
leaky bucket in Redis, shaped exactly like the local ones (oexec/limits/windows.py: a
burst, then an even drain, so no window of the venue's length sees more than the
limit). One Lua script checks every window and charges all of them or none, with the
Redis server's clock, so all daemons draw from the same buckets atomically. No library
fitted: the Redis rate-limit packages count one window per key (fixed or sliding log),
without the all-or-nothing charge over several windows or the wait-time answer a
deadline-aware gate needs.

How it is used (implements ports.RequestGate):

- the local ``VenueRateLimiter`` stays in front as the fast path: its FIFO lanes and
  at-once refusals cost no round trip, and one daemon can never exceed the limit alone;
- then the shared buckets: the script answers "charged" or "wait w ms"; the request
  sleeps and retries while its deadline allows, else fails RATE_LIMITED at once. One
  waiter per daemon polls Redis (a FIFO lane), the rest queue behind it;
- ``observe``: the venue's usage headers correct the shared view like the local one:
  when the venue counts more than all daemons charged in the window (another process
  on the account, a restart), the shared bucket is raised to the venue's count;
- ``pause`` (429/418 Retry-After) is written to Redis too, so every daemon stops.

Redis unreachable: the gate fails closed with ThrottleError(STORE_UNAVAILABLE) — the
request was never sent, so its claim is released and a retry with the same request_id
is safe. (The store is on the same Redis: orders could not be recorded anyway.)

Keys (``<prefix>{limits}:…``, one hash slot for Redis Cluster): per window a hash
``level``/``ts`` and a ``:sent`` hash of units charged per second; ``paused`` (PX).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oexec.errors import ErrorCode, ThrottleError
from oexec.limits.limiter import HEADER_WINDOWS, VenueRateLimiter, banned_error
from oexec.limits.windows import WindowKey, WindowSpec, amount_for
from oexec.models import RateLimitRule
from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.limits.shared")

#: TAKE: KEYS = paused, then (bucket, sent) per window; ARGV = per window
#: (capacity, rate_per_s, amount, interval_s). Returns {charged 0/1, wait_ms, banned 0/1}.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local paused = redis.call('PTTL', KEYS[1])
if paused > 0 then return {0, paused, 1} end
local n = (#KEYS - 1) / 2
local levels = {}
local wait = 0
for i = 1, n do
  local cap = tonumber(ARGV[4 * i - 3])
  local rate = tonumber(ARGV[4 * i - 2])
  local amount = tonumber(ARGV[4 * i - 1])
  local state = redis.call('HMGET', KEYS[2 * i], 'level', 'ts')
  local level = tonumber(state[1]) or 0
  local ts = tonumber(state[2]) or now
  level = math.max(0, level - math.max(0, now - ts) * rate)
  levels[i] = level
  local excess = level + amount - cap
  if excess > 0 then wait = math.max(wait, excess / rate) end
end
if wait > 0 then return {0, math.ceil(wait * 1000), 0} end
local second = math.floor(now)
for i = 1, n do
  local amount = tonumber(ARGV[4 * i - 1])
  local ttl = tonumber(ARGV[4 * i]) * 2000
  redis.call('HSET', KEYS[2 * i], 'level', levels[i] + amount, 'ts', now)
  redis.call('PEXPIRE', KEYS[2 * i], ttl)
  redis.call('HINCRBY', KEYS[2 * i + 1], second, amount)
  redis.call('PEXPIRE', KEYS[2 * i + 1], ttl)
end
return {1, 0, 0}
"""

#: CORRECT: KEYS = bucket, sent; ARGV = venue_used, limit, interval_s, rate_per_s.
#: Raises the level to the venue's count when it exceeds what the daemons charged.
CORRECT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local used = tonumber(ARGV[1])
local interval = tonumber(ARGV[3])
local horizon = math.floor(now) - interval
local sent = 0
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local second = tonumber(fields[i])
  if second <= horizon then redis.call('HDEL', KEYS[2], fields[i])
  else sent = sent + tonumber(fields[i + 1]) end
end
if used <= sent then return 0 end
local state = redis.call('HMGET', KEYS[1], 'level', 'ts')
local level = tonumber(state[1]) or 0
local ts = tonumber(state[2]) or now
level = math.max(0, level - math.max(0, now - ts) * tonumber(ARGV[4]))
local raised = math.max(level, math.min(used, tonumber(ARGV[2])))
redis.call('HSET', KEYS[1], 'level', raised, 'ts', now)
redis.call('PEXPIRE', KEYS[1], interval * 2000)
return 1
"""

#: PAUSE: KEYS = paused; ARGV = ms. Never shortens a pause.
PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""

Need = tuple[WindowSpec, int]
REDIS_FAILURES = (RedisError, OSError, TimeoutError)
#: Shortest sleep between polls of the shared buckets.
MIN_SLEEP_S = 0.005


class SharedRateLimiter:
    """RequestGate over Redis with a local ``VenueRateLimiter`` in front (see module doc)."""

    def __init__(
        self,
        local: VenueRateLimiter,
        redis: aioredis.Redis,
        *,
        prefix: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.local = local
        self._redis = redis
        self._prefix = f"{prefix}{{limits}}:"
        self._clock = clock
        self._take = redis.register_script(TAKE)
        self._correct = redis.register_script(CORRECT)
        self._pause = redis.register_script(PAUSE)
        self._lane = asyncio.Lock()  # one poller of the shared buckets per daemon
        self._pending: dict[WindowKey, int] = {}  # latest header values not yet sent
        self._feedback: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.shared_refusals = 0

    # -- the parts the daemon reads ------------------------------------------------------
    def configure(self, rules: Sequence[RateLimitRule]) -> None:
        self.local.configure(rules)

    def paused_for(self) -> float:
        return self.local.paused_for()

    def snapshot(self) -> dict[str, dict[str, float]]:
        return self.local.snapshot()

    def _specs(self) -> list[WindowSpec]:
        return [bucket.spec for bucket in self.local._buckets.values()]

    def key(self, spec: WindowSpec, suffix: str = "") -> str:
        return f"{self._prefix}{spec.name}{suffix}"

    # -- the gate ------------------------------------------------------------------------
    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None:
        """Local tokens first (refusal there costs no round trip), then the shared ones."""
        budget = self.local.config.default_deadline_ms / 1000 if deadline_s is None else deadline_s
        deadline = self._clock() + max(0.0, budget)
        await self.local.acquire(weight=weight, orders=orders, deadline_s=budget)
        needs = [
            (spec, amount)
            for spec in self._specs()
            if (amount := amount_for(spec, weight=weight, orders=orders)) > 0
        ]
        try:
            async with asyncio.timeout(max(0.0, deadline - self._clock())):
                await self._lane.acquire()
        except TimeoutError:
            raise self._late(0.0, "queue") from None
        try:
            await self._take_shared(needs, deadline)
        finally:
            self._lane.release()

    async def _take_shared(self, needs: list[Need], deadline: float) -> None:
        while True:
            charged, wait_s, banned = await self._try(needs)
            if charged:
                return
            if banned:
                self.local.pause(wait_s)
            if self._clock() + wait_s > deadline:
                self.shared_refusals += 1
                raise banned_error(wait_s) if banned else self._late(wait_s, "shared")
            await asyncio.sleep(max(wait_s, MIN_SLEEP_S))

    async def _try(self, needs: list[Need]) -> tuple[bool, float, bool]:
        keys = [self._prefix + "paused"]
        args: list[float | int] = []
        for spec, amount in needs:
            keys += [self.key(spec), self.key(spec, ":sent")]
            args += [spec.burst, spec.rate_per_s, amount, spec.interval_s]
        try:
            charged, wait_ms, banned = await self._take(keys=keys, args=args)
        except REDIS_FAILURES as exc:
            raise ThrottleError(
                f"shared rate limiter unavailable: {type(exc).__name__}",
                code=ErrorCode.STORE_UNAVAILABLE,
                details={"limiter": "shared"},
            ) from None
        return bool(charged), int(wait_ms) / 1000, bool(banned)

    @staticmethod
    def _late(wait_s: float, where: str) -> ThrottleError:
        return ThrottleError(
            f"rate limit ({where}) has no room before the deadline",
            code=ErrorCode.RATE_LIMITED,
            retry_after_s=wait_s,
            details={"limiter": where, "retry_after_s": round(wait_s, 3)},
        )

    # -- venue feedback --------------------------------------------------------------------
    def observe(
        self,
        *,
        used_weight_1m: int | None = None,
        order_count_10s: int | None = None,
        order_count_1m: int | None = None,
    ) -> None:
        """Correct the shared view in the background (the latest value per window wins).

        Not the local one: its own sends are only part of the account's, so the local
        correction would count every other daemon as foreign usage and over-throttle.
        """
        reported = {
            "used_weight_1m": used_weight_1m,
            "order_count_10s": order_count_10s,
            "order_count_1m": order_count_1m,
        }
        for header, used in reported.items():
            if used is not None:
                key = HEADER_WINDOWS[header]
                self._pending[key] = max(used, self._pending.get(key, 0))
        self._kick()

    def pause(self, retry_after_s: float) -> None:
        """Stop this daemon now and, through Redis, every other one."""
        self.local.pause(retry_after_s)
        self._spawn(self._pause_shared(retry_after_s))

    async def _pause_shared(self, retry_after_s: float) -> None:
        ms = max(1, int(retry_after_s * 1000))
        with contextlib.suppress(*REDIS_FAILURES):
            await self._pause(keys=[self._prefix + "paused"], args=[ms])

    def _kick(self) -> None:
        if self._feedback is None or self._feedback.done():
            self._feedback = self._spawn(self._send_feedback())

    def _spawn(self, coro: Any) -> asyncio.Task[None] | None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (sync unit use): nothing to share with
            coro.close()
            return None
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _send_feedback(self) -> None:
        specs = {spec.key: spec for spec in self._specs()}
        while self._pending:
            key, used = self._pending.popitem()
            spec = specs.get(key)
            if spec is None:
                continue
            try:
                await self._correct(
                    keys=[self.key(spec), self.key(spec, ":sent")],
                    args=[used, spec.limit, spec.interval_s, spec.rate_per_s],
                )
            except REDIS_FAILURES as exc:
                log.warning("shared limiter: header correction failed: %r", exc)
                return

    async def close(self) -> None:
        await cancel_and_wait(list(self._background))
