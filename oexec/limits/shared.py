"""One rate limiter for every daemon on a venue account: leaky buckets kept in Redis,
drawn on in leased batches.

Why. Per-process buckets multiply the real rate by the number of daemons and earn a
429, then a 418 ban. Here each venue window (orders/10 s, orders/min, weight/min) is one
leaky bucket in Redis, shaped like the local ones (oexec/limits/windows.py: a burst,
then an even drain). One Lua script checks every window and charges all of them or
none, with the Redis server's clock, so all daemons draw from the same buckets
atomically. No library fitted: the Redis rate-limit packages count one window per key
(fixed or sliding log), without the all-or-nothing charge over several windows or the
wait-time answer a deadline-aware gate needs.

Leases (issue 10). A Redis round trip per request cost ≈ 1 ms per submit, so a daemon
leases units in batches and spends them locally:

- one script call (LEASE) charges, for every window at once, the request's own need
  (all-or-nothing, as before) plus up to a batch of extra units per window where there
  is room. The units sit in a per-window *slot* that may be spent for L =
  ``shared_lease_ms`` (at most 250 ms) after the call was sent; a request whose windows
  all have live slots with room is charged locally, without a round trip;
- the batch adapts to demand: it doubles when a slot runs dry while live and shrinks to
  what was spent when it lapses, capped at ``shared_lease_fraction`` of the window's
  burst, so an idle daemon leases one request's worth and none hoards;
- a lease is charged as if spent. A slot that lapses (a timer) or is replaced, and every
  slot on ``close``, gives its rest back in the next script call: the level drops by the
  unused units less what the bucket has drained since the grant (``rate × age``, on the
  Redis clock) — never more than the units still count, so the bucket never ends lower
  than if those units had never been leased. A dead daemon's lease just drains.

The guarantee is unchanged: all daemons together never exceed a window. A leased unit is
sent at most 250 ms after it was charged, so the units sent in a venue window of T
seconds were charged within T + 0.25 s; the shared buckets therefore drain at
r·T/(T + 0.25) instead of r (2.4 % slower for 10 s windows, 0.4 % for 1 min), which
keeps burst + drain over T + 0.25 s at the limit; the burst itself is unchanged. Every
daemon drains at that rate, whatever its own lease (``shared_lease_ms = 0`` included),
so all daemons of an account must run this version: one draining at r would let a
window see up to r × 0.25 s more (tests/limits/test_limits_shared.py has that case).

How it is used (implements ports.RequestGate):

- the local ``VenueRateLimiter`` stays in front: its FIFO lanes and at-once refusals
  cost no round trip, and one daemon can never exceed the limit alone;
- then the slots; when they do not cover the request, one LEASE call at a time per
  daemon (a FIFO lane: later requests queue behind it, none overtakes); the script
  answers "granted" or "wait w ms"; the request sleeps and retries while its deadline
  allows, else fails RATE_LIMITED at once;
- ``observe``: the venue's usage headers correct the shared view like the local one:
  when the venue counts more than all daemons charged in the window (another process
  on the account, a restart), the shared bucket is raised to the venue's count;
- ``pause`` (429/418 Retry-After) is written to Redis and published on a channel. Every
  daemon stops spending its slots at once on the message (one Redis hop), and at the
  latest ``shared_lease_ms`` after the pause was written even if the message is lost
  (pub/sub down): no slot lives longer, and every LEASE call reads the pause key.

Redis unreachable: a request its slots do not cover fails closed with
ThrottleError(STORE_UNAVAILABLE) — it was never sent, so its claim is released and a
retry with the same request_id is safe. (Units already leased were charged: spending
them stays within the limits. The store is on the same Redis: orders could not be
recorded anyway.) ``shared_lease_ms = 0``: no leases, one script call per request.

Keys (``<prefix>{limits}:…``, one hash slot for Redis Cluster): per window a hash
``level``/``ts`` and a ``:sent`` hash of units charged per second (less the units given
back); ``paused`` (PX), also the name of the pause channel. Built in store/keys.py.

Size: ~540 lines, over the ~400 guideline on purpose: a third is the Lua scripts, kept
next to the Python that calls them (each script's KEYS/ARGV contract beside its call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oexec.errors import ErrorCode, ThrottleError
from oexec.limits.limiter import VenueRateLimiter, banned_error
from oexec.limits.windows import WindowKey, WindowSpec, amount_for, level_for_count
from oexec.models import RateLimitRule
from oexec.store.keys import ClusterKeys
from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.limits.shared")

#: LEASE: KEYS = paused, then (bucket, sent) per window; ARGV = per window
#: (capacity, rate_per_s, need, extra, interval_s, give_back, its grant time in µs).
#: Gives back first (always), then: {0, pause_ms, 1, now_us} while paused,
#: {0, wait_ms, 0, now_us} when a need does not fit, else {1, 0, 0, now_us, grant...}:
#: every need charged plus as much of each extra as fits (whole units).
LEASE = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = now_us / 1000000
local n = (#KEYS - 1) / 2
local levels = {}
for i = 1, n do
  local a = 7 * (i - 1)
  local rate = tonumber(ARGV[a + 2])
  local state = redis.call('HMGET', KEYS[2 * i], 'level', 'ts')
  local level = tonumber(state[1]) or 0
  local ts = tonumber(state[2]) or now
  level = math.max(0, level - math.max(0, now - ts) * rate)
  local back = tonumber(ARGV[a + 6])
  if back > 0 then
    local granted = tonumber(ARGV[a + 7])
    local second = math.floor(granted / 1000000)
    local sent = tonumber(redis.call('HGET', KEYS[2 * i + 1], second))
    if sent then redis.call('HSET', KEYS[2 * i + 1], second, math.max(0, sent - back)) end
    local drop = back - math.max(0, now_us - granted) / 1000000 * rate
    if drop > 0 and level > 0 then
      level = math.max(0, level - drop)
      redis.call('HSET', KEYS[2 * i], 'level', level, 'ts', now)
    end
  end
  levels[i] = level
end
local paused = redis.call('PTTL', KEYS[1])
if paused > 0 then return {0, paused, 1, now_us} end
local wait = 0
for i = 1, n do
  local a = 7 * (i - 1)
  local need = tonumber(ARGV[a + 3])
  local excess = levels[i] + need - tonumber(ARGV[a + 1])
  if need > 0 and excess > 0 then wait = math.max(wait, excess / tonumber(ARGV[a + 2])) end
end
if wait > 0 then return {0, math.ceil(wait * 1000), 0, now_us} end
local out = {1, 0, 0, now_us}
local second = math.floor(now)
for i = 1, n do
  local a = 7 * (i - 1)
  local need = tonumber(ARGV[a + 3])
  local room = math.floor(tonumber(ARGV[a + 1]) - levels[i] - need)
  local grant = need + math.max(0, math.min(tonumber(ARGV[a + 4]), room))
  if grant > 0 then
    local ttl = tonumber(ARGV[a + 5]) * 2000
    redis.call('HSET', KEYS[2 * i], 'level', levels[i] + grant, 'ts', now)
    redis.call('PEXPIRE', KEYS[2 * i], ttl)
    redis.call('HINCRBY', KEYS[2 * i + 1], second, grant)
    redis.call('PEXPIRE', KEYS[2 * i + 1], ttl)
  end
  out[4 + i] = grant
end
return out
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

#: PAUSE: KEYS = paused; ARGV = ms. Never shortens a pause; a longer one is published
#: (channel = the key's name) so that daemons spending leased units stop at once.
PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
  redis.call('PUBLISH', KEYS[1], ms)
end
return 1
"""

Need = tuple[WindowKey, int]
REDIS_FAILURES = (RedisError, OSError, TimeoutError)
#: Shortest sleep between polls of the shared buckets.
MIN_SLEEP_S = 0.005
#: The longest lease. Every daemon drains the shared buckets at r·T/(T + MAX_LEASE_S),
#: whatever its own ``shared_lease_ms``: one rate for all, so the bound holds for the
#: daemon with the longest lease (a bucket drained faster by one would not keep it).
MAX_LEASE_S = 0.25
#: Back-off of the pause watcher after its connection failed.
WATCH_RETRY_S = (0.1, 2.0)


class _Slot:
    """Units of one window leased from Redis, spendable until ``expires`` (local clock)."""

    __slots__ = ("expires", "granted", "granted_us", "left")

    def __init__(self, granted: int, granted_us: int, expires: float) -> None:
        self.granted = granted
        self.left = granted
        self.granted_us = granted_us  # Redis time of the grant: ages what is given back
        self.expires = expires


class SharedRateLimiter:
    """RequestGate over Redis with a local ``VenueRateLimiter`` in front (see module doc)."""

    def __init__(
        self,
        local: VenueRateLimiter,
        redis: aioredis.Redis,
        *,
        prefix: str,
        clock: Callable[[], float] = time.monotonic,
        watch_pauses: bool = True,
    ) -> None:
        self.local = local
        self._redis = redis
        self._keys = ClusterKeys(prefix)
        self._clock = clock
        self._lease_s = min(max(0, local.config.shared_lease_ms) / 1000, MAX_LEASE_S)
        self._lease_fraction = local.config.shared_lease_fraction
        self._take = redis.register_script(LEASE)
        self._correct = redis.register_script(CORRECT)
        self._pause = redis.register_script(PAUSE)
        self._lane = asyncio.Lock()  # one LEASE caller per daemon, FIFO
        self._waiting = 0  # requests in (or queued for) the lane
        self._slots: dict[WindowKey, _Slot] = {}
        self._size: dict[WindowKey, int] = {}  # adaptive lease size per window, in units
        self._give_back: dict[WindowKey, tuple[int, int]] = {}  # unused units, grant µs
        self._expiry: asyncio.TimerHandle | None = None
        self._plans: dict[tuple[int, int], list[Need]] = {}
        self._plans_for: object = None  # the local buckets the plans were made for
        self._specs: dict[WindowKey, WindowSpec] = {}
        self._watch = watch_pauses
        self._watcher: asyncio.Task[None] | None = None
        self._pending: dict[WindowKey, float] = {}  # latest header levels not yet sent
        self._feedback: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.shared_refusals = 0
        self.shared_calls = 0  # LEASE script calls (round trips on the request path or not)

    # -- the parts the daemon reads ------------------------------------------------------
    def configure(self, rules: Sequence[RateLimitRule]) -> None:
        self.local.configure(rules)

    def paused_for(self) -> float:
        return self.local.paused_for()

    def snapshot(self) -> dict[str, dict[str, float]]:
        return self.local.snapshot()

    def key(self, spec: WindowSpec, suffix: str = "") -> str:
        return self._keys.limit(spec.name, suffix)

    def shared_rate(self, spec: WindowSpec) -> float:
        """The shared bucket's drain: r·T/(T + L), so that units sent up to L after they
        were charged still fit the window (module doc); L = MAX_LEASE_S for all."""
        return spec.rate_per_s * spec.interval_s / (spec.interval_s + MAX_LEASE_S)

    def _plan(self, weight: int, orders: int) -> list[Need]:
        buckets = self.local._buckets
        if buckets is not self._plans_for:  # (re)configured: new windows
            self._plans_for = buckets
            self._plans = {}
            self._specs = {key: bucket.spec for key, bucket in buckets.items()}
            for key in [key for key in self._slots if key not in self._specs]:
                del self._slots[key]  # a dropped window: its units just drain
        plan = self._plans.get((weight, orders))
        if plan is None:
            plan = self._plans[(weight, orders)] = [
                (key, amount)
                for key, spec in self._specs.items()
                if (amount := amount_for(spec, weight=weight, orders=orders)) > 0
            ]
        return plan

    # -- the gate ------------------------------------------------------------------------
    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None:
        """Local tokens first (refusal there costs no round trip), then leased units,
        leasing more from Redis when they do not cover the request."""
        budget = self.local.config.default_deadline_ms / 1000 if deadline_s is None else deadline_s
        deadline = self._clock() + max(0.0, budget)
        await self.local.acquire(weight=weight, orders=orders, deadline_s=budget)
        needs = self._plan(weight, orders)
        if not self._waiting and self._spend(needs):
            return
        self._waiting += 1
        try:
            try:
                async with asyncio.timeout(max(0.0, deadline - self._clock())):
                    await self._lane.acquire()
            except TimeoutError:
                raise self._late(0.0, "queue") from None
            try:
                if not self._spend(needs):  # a lease taken ahead of us may cover it
                    await self._lease(needs, deadline)
            finally:
                self._lane.release()
        finally:
            self._waiting -= 1

    def _spend(self, needs: list[Need]) -> bool:
        """Charge ``needs`` to live slots if every one of them has room; else nothing."""
        if not self._live(needs, self._clock()):
            return False
        self._charge(needs)
        return True

    async def _lease(self, needs: list[Need], deadline: float) -> None:
        """Charge ``needs``, leasing from Redis for every window whose slot does not
        cover its part: one LEASE call gives the old slots' rest back and brings each
        need plus a batch. Sleeps and retries while Redis says wait."""
        while True:
            now = self._clock()
            kept: list[Need] = []
            renew: list[tuple[WindowSpec, int, int]] = []  # spec, need, extra
            for key, need in needs:
                slot = self._slots.get(key)
                if slot is not None and slot.expires > now and slot.left >= need:
                    kept.append((key, need))
                    continue
                if slot is not None:
                    self._retire(key, slot, ran_dry=slot.expires > now)
                renew.append((self._specs[key], need, self._extra(key, need)))
            if not renew:
                self._charge(kept)
                return
            needed = {key for key, _ in needs}
            for key, spec in self._specs.items():  # lapsed unneeded windows ride along
                slot = self._slots.get(key)
                if key not in needed and (slot is None or slot.expires <= now):
                    if slot is not None:
                        self._retire(key, slot, ran_dry=False)
                    renew.append((spec, 0, self._extra(key, 0)))
            sent_at = self._clock()
            granted, wait_s, banned, now_us, grants = await self._call(renew)
            if granted:
                expires = sent_at + self._lease_s
                for (spec, _, _), grant in zip(renew, grants, strict=True):
                    self._slots[spec.key] = _Slot(grant, now_us, expires)
                self._arm_expiry()
                self._start_watcher()
                if self._live(kept, self._clock()):  # else a kept slot lapsed meanwhile
                    self._charge(needs)
                    return
                continue
            if banned:
                self.local.pause(wait_s)
            if self._clock() + wait_s > deadline:
                self.shared_refusals += 1
                raise banned_error(wait_s) if banned else self._late(wait_s, "shared")
            await asyncio.sleep(max(wait_s, MIN_SLEEP_S))

    def _live(self, needs: list[Need], now: float) -> bool:
        for key, amount in needs:
            slot = self._slots.get(key)
            if slot is None or slot.expires <= now or slot.left < amount:
                return False
        return True

    def _charge(self, needs: list[Need]) -> None:
        for key, amount in needs:
            self._slots[key].left -= amount

    def _extra(self, key: WindowKey, need: int) -> int:
        """Units to lease beyond ``need``: the adaptive size, capped by the fraction."""
        if self._lease_s <= 0:
            return 0
        cap = int(self._specs[key].burst * self._lease_fraction)
        return max(0, min(self._size.get(key, 0), cap) - need)

    def _retire(self, key: WindowKey, slot: _Slot, *, ran_dry: bool) -> None:
        """Drop a slot: its rest goes back with the next call; the size follows demand."""
        del self._slots[key]
        spent = slot.granted - slot.left
        if ran_dry:  # demand outran the lease: a bigger one next time
            self._size[key] = max(2 * self._size.get(key, 0), 2 * slot.granted, 2)
        elif spent < slot.granted:  # lapsed with units left: what one lease period used
            self._size[key] = spent
        if slot.left > 0:
            # one rest per window between calls (a call takes them all); were there an
            # older one, it stays charged and drains: never more room than is true
            self._give_back[key] = (slot.left, slot.granted_us)

    async def _call(
        self, renew: list[tuple[WindowSpec, int, int]]
    ) -> tuple[bool, float, bool, int, list[int]]:
        keys = [self._keys.limits_paused]
        args: list[float | int] = []
        give_back, self._give_back = self._give_back, {}
        windows = list(renew)
        renewed = {spec.key for spec, _, _ in renew}
        for key in give_back:  # rests of windows not renewed now go back too
            if key not in renewed and key in self._specs:
                windows.append((self._specs[key], 0, 0))
        for spec, need, extra in windows:
            back, granted_us = give_back.get(spec.key, (0, 0))
            keys += [self.key(spec), self.key(spec, ":sent")]
            args += [spec.burst, self.shared_rate(spec), need, extra, spec.interval_s]
            args += [back, granted_us]
        self.shared_calls += 1
        try:
            reply = await self._take(keys=keys, args=args)
        except REDIS_FAILURES as exc:
            # given-back units stay charged: they drain (never an over-count of room)
            raise ThrottleError(
                f"shared rate limiter unavailable: {type(exc).__name__}",
                code=ErrorCode.STORE_UNAVAILABLE,
                details={"limiter": "shared"},
            ) from None
        granted, wait_ms, banned, now_us = (int(x) for x in reply[:4])
        grants = [int(x) for x in reply[4 : 4 + len(renew)]]
        return bool(granted), wait_ms / 1000, bool(banned), now_us, grants

    def _arm_expiry(self) -> None:
        """A timer at the earliest slot expiry: lapsed slots give their rest back then."""
        if self._expiry is not None or not self._slots or self._lease_s <= 0:
            return
        first = min(slot.expires for slot in self._slots.values())
        delay = max(0.0, first - self._clock())
        self._expiry = asyncio.get_running_loop().call_later(delay, self._lapse)

    def _lapse(self) -> None:
        self._expiry = None
        now = self._clock()
        for key, slot in list(self._slots.items()):
            if slot.expires <= now:
                self._retire(key, slot, ran_dry=False)
        if self._give_back:
            self._spawn(self._send_back())
        self._arm_expiry()

    async def _send_back(self) -> None:
        """Give lapsed units back now (not with the next request: it may be long)."""
        if self._give_back:
            with contextlib.suppress(ThrottleError):
                await self._call([])

    # -- pause ---------------------------------------------------------------------------
    def pause(self, retry_after_s: float) -> None:
        """Stop this daemon now and, through Redis, every other one."""
        self.local.pause(retry_after_s)
        self._spawn(self._pause_shared(retry_after_s))

    async def _pause_shared(self, retry_after_s: float) -> None:
        ms = max(1, int(retry_after_s * 1000))
        with contextlib.suppress(*REDIS_FAILURES):
            await self._pause(keys=[self._keys.limits_paused], args=[ms])

    def _start_watcher(self) -> None:
        if self._watcher is None and self._watch and self._lease_s > 0:
            self._watcher = self._spawn(self._watch_pauses())

    async def _watch_pauses(self) -> None:
        """Follow the pause channel: a 429/418 anywhere stops leased spending here."""
        channel = self._keys.limits_paused
        retry_s = WATCH_RETRY_S[0]
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                left_ms = await self._redis.pttl(channel)  # one written while away
                if left_ms > 0:
                    self.local.pause(left_ms / 1000)
                retry_s = WATCH_RETRY_S[0]
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.local.pause(int(message["data"]) / 1000)
            except REDIS_FAILURES as exc:
                log.warning("shared limiter: pause channel lost (%r); leases bound it", exc)
            finally:
                with contextlib.suppress(*REDIS_FAILURES):
                    await pubsub.aclose()
            await asyncio.sleep(retry_s)
            retry_s = min(2 * retry_s, WATCH_RETRY_S[1])

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
        used: Mapping[WindowKey, int],
        window_age_s: Mapping[WindowKey, float] | None = None,
    ) -> None:
        """Correct the shared view in the background (the latest value per window wins;
        a fixed window's count is taken as of its age, ``windows.level_for_count``).

        Not the local one: its own sends are only part of the account's, so the local
        correction would count every other daemon as foreign usage and over-throttle.
        """
        ages = window_age_s or {}
        buckets = self.local._buckets
        for key, count in used.items():
            bucket = buckets.get(key)
            if bucket is None:
                continue
            level = level_for_count(count, self.shared_rate(bucket.spec), ages.get(key))
            if level <= self.local.sent_in_window(key):
                continue  # this daemon's own sends explain it: the script would say so
            self._pending[key] = max(level, self._pending.get(key, 0.0))
        if self._pending:
            self._kick()

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
        buckets = self.local._buckets
        while self._pending:
            key, used = self._pending.popitem()
            bucket = buckets.get(key)
            if bucket is None:
                continue
            spec = bucket.spec
            try:
                await self._correct(
                    keys=[self.key(spec), self.key(spec, ":sent")],
                    args=[used, spec.limit, spec.interval_s, self.shared_rate(spec)],
                )
            except REDIS_FAILURES as exc:
                log.warning("shared limiter: header correction failed: %r", exc)
                return

    async def close(self) -> None:
        """Give every leased unit not spent back, then stop the background tasks."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for key, slot in list(self._slots.items()):
            self._retire(key, slot, ran_dry=False)
        if self._give_back:
            with contextlib.suppress(ThrottleError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._send_back()
        await cancel_and_wait(list(self._background))
