"""Exactly one daemon does a job (consume the account's user stream): a Redis lease.

Why. The venue gives one listen key per account; every daemon consuming it would apply
each fill N times over (harmless thanks to the store's de-duplication, but N× the
recovery polling and weight) and, worse, each could close the shared key on shutdown.
So the daemons elect one consumer with a lease:

- ``<key>`` holds ``<owner>|<token>`` with a TTL (``SET NX PX``); ``token`` comes from
  ``INCR <key>:fence`` at each acquisition, so it grows with every change of owner
  (a fencing token). Renewal and release compare the full value first (Lua), so an
  owner whose lease lapsed can neither extend nor delete its successor's.
- The owner checks, before applying each stream event, that its local deadline (last
  renewal + TTL minus a margin, on the monotonic clock) has not passed: a paused or
  partitioned ex-owner stops applying before anyone else can have taken over. It also
  reads the lease back from Redis (``check``), at most every ``recheck_s`` (0.1 s), for
  what the TTL cannot see (a lease key lost with a Redis restart, or deleted by hand,
  and taken by a standby): a GET per event put a Redis round trip (≈ 0.6 ms on the
  bench host) in front of every fill (issue 10). What an ex-owner applies in that window
  is idempotent anyway (version CAS on orders, fills keyed by trade id).
- A dead owner's lease lapses after ``ttl_s``; a standby retrying every ``renew_s``
  takes over within ``ttl_s + renew_s``. A clean stop releases at once.

``Membership`` keeps a heartbeat per daemon, so the last one standing knows it may
close the shared listen key, and no other may.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.lease")

T = TypeVar("T")
REDIS_FAILURES = (RedisError, OSError, TimeoutError)

#: KEYS = lease, fence; ARGV = owner, ttl_ms. Returns the token held (0: someone else).
ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local owner, token = string.match(current, '^(.*)|(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
"""
#: KEYS = lease; ARGV = value, ttl_ms. 1 when still ours (and extended).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
#: KEYS = lease; ARGV = value. 1 when it was ours and is now gone.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def default_instance_id() -> str:
    """``host:pid:nonce``: unique even for several daemons in one process (tests)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseLost(Exception):
    """The lease is no longer ours: stop the job now."""


class RedisLease:
    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        owner: str,
        *,
        ttl_s: float = 3.0,
        recheck_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self.recheck_s = recheck_s
        self._checked_at = float("-inf")  # last time Redis confirmed the lease (clock)
        self.key = key
        self.owner = owner
        self.ttl_s = ttl_s
        self._clock = clock
        self._acquire = redis.register_script(ACQUIRE)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self.token = 0  # fencing token of the current tenure; 0 when not held
        self._valid_until = float("-inf")

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))

    @property
    def _value(self) -> str:
        return f"{self.owner}|{self.token}"

    def _extend(self, asked_at: float) -> None:
        """Valid locally until the TTL (counted from before the request) minus a margin."""
        self._valid_until = asked_at + self.ttl_s * 0.8

    def valid(self) -> bool:
        """Held, by the local clock; no round trip."""
        return self.token > 0 and self._clock() < self._valid_until

    async def try_acquire(self) -> int:
        """The fencing token if the lease is (now) ours, else 0."""
        asked_at = self._clock()
        token = int(
            await self._acquire(
                keys=[self.key, self.key + ":fence"], args=[self.owner, self._ttl_ms]
            )
        )
        if token:
            self.token = token
            self._extend(asked_at)
        return token

    async def renew(self) -> bool:
        if self.token == 0:
            return False
        asked_at = self._clock()
        if int(await self._renew(keys=[self.key], args=[self._value, self._ttl_ms])):
            self._extend(asked_at)
            return True
        self._lost("renewal refused")
        return False

    async def check(self) -> None:
        """Raise LeaseLost unless the lease is ours: by the local deadline always, and by
        the lease in Redis still carrying our token when last read ``recheck_s`` ago."""
        if not self.valid():
            raise LeaseLost("lease lapsed (local deadline)")
        asked_at = self._clock()
        if asked_at - self._checked_at < self.recheck_s:
            return
        current = await self._redis.get(self.key)
        value = current.decode() if isinstance(current, bytes) else current
        if value != self._value:
            self._lost(f"lease now {value!r}")
            raise LeaseLost("lease taken over")
        self._checked_at = asked_at

    async def release(self) -> None:
        if self.token == 0:
            return
        with contextlib.suppress(*REDIS_FAILURES):
            await self._release(keys=[self.key], args=[self._value])
        self.token = 0
        self._valid_until = float("-inf")
        self._checked_at = float("-inf")

    def _lost(self, why: str) -> None:
        log.warning("lease %s lost by %s (token %d): %s", self.key, self.owner, self.token, why)
        self.token = 0
        self._valid_until = float("-inf")
        self._checked_at = float("-inf")


async def fenced(events: AsyncIterator[T], lease: RedisLease) -> AsyncIterator[T]:
    """``events`` while the lease is ours; raises LeaseLost before an event it may not apply."""
    async for event in events:
        await lease.check()
        yield event


class LeaderRunner:
    """Runs ``job(token)`` only while holding ``lease``; stands by and retries otherwise.

    The job is cancelled as soon as a renewal is refused or the local deadline passes
    (Redis unreachable: we cannot know whether someone else took over).
    """

    def __init__(
        self,
        lease: RedisLease,
        job: Callable[[int], Coroutine[Any, Any, None]],
        *,
        renew_s: float = 1.0,
        on_change: Callable[[bool], None] | None = None,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.lease = lease
        self._job = job
        self._renew_s = renew_s
        self._on_change = on_change
        self._heartbeat = heartbeat
        self.leading = False
        self.tenures = 0

    async def run(self) -> None:
        try:
            while True:
                await self._beat()
                token = await self._attempt(self.lease.try_acquire)
                if token:
                    await self._lead(token)
                else:
                    await asyncio.sleep(self._renew_s)
        finally:
            await asyncio.shield(self.lease.release())

    async def _lead(self, token: int) -> None:
        self.tenures += 1
        self._set(True)
        log.info("%s leads %s (token %d)", self.lease.owner, self.lease.key, token)
        job = asyncio.get_running_loop().create_task(self._job(token), name="leased-job")
        try:
            while self.lease.valid():
                done, _ = await asyncio.wait({job}, timeout=self._renew_s)
                if done:  # the job ended on its own (error, or lease lost inside it)
                    with contextlib.suppress(LeaseLost, Exception):
                        job.result()
                    break
                await self._beat()
                await self._attempt(self.lease.renew)
        finally:
            try:
                await cancel_and_wait([job])
            finally:
                self._set(False)
                await self.lease.release()

    async def _beat(self) -> None:
        if self._heartbeat is not None:
            await self._attempt(self._heartbeat)

    @staticmethod
    async def _attempt(call: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await call()
        except REDIS_FAILURES as exc:
            log.warning("lease: redis unavailable: %r", exc)
            return None

    def _set(self, leading: bool) -> None:
        self.leading = leading
        if self._on_change is not None:
            self._on_change(leading)


class Membership:
    """Live daemons of one deployment: a sorted set of instance -> heartbeat expiry (ms)."""

    def __init__(self, redis: aioredis.Redis, key: str, instance: str, ttl_s: float) -> None:
        self._redis = redis
        self.key = key
        self.instance = instance
        self.ttl_s = ttl_s

    async def beat(self) -> None:
        now_ms = int(time.time() * 1000)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(self.key, {self.instance: now_ms + int(self.ttl_s * 1000)})
        pipe.zremrangebyscore(self.key, "-inf", now_ms)
        pipe.pexpire(self.key, int(self.ttl_s * 1000) * 10)
        await pipe.execute()

    async def others_alive(self) -> int:
        now_ms = int(time.time() * 1000)
        members = await self._redis.zrangebyscore(self.key, now_ms, "+inf")
        names = {m.decode() if isinstance(m, bytes) else m for m in members}
        return len(names - {self.instance})

    async def leave(self) -> None:
        with contextlib.suppress(*REDIS_FAILURES):
            await self._redis.zrem(self.key, self.instance)
