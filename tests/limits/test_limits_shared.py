"""The shared limiter's leases against the real Redis: several limiters (= daemons) on
one account, windows of one or two seconds so that real time can be used.

What must hold with leases as without: together they never exceed a window, a pause
written by one stops the others (within the stated bound), Redis down fails closed.
What is new: most requests cost no script call, unused units go back on close and when
a lease lapses.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from oexec.config import LimitsConfig
from oexec.errors import ThrottleError
from oexec.limits import VenueRateLimiter
from oexec.limits.shared import SharedRateLimiter
from oexec.limits.windows import ORDERS, REQUEST_WEIGHT, amount_for, plan_windows
from oexec.models import RateLimitRule

from ..e2e.conftest import REDIS_URL
from ..ports import free_port

pytestmark = pytest.mark.redis

D = Decimal
#: Short windows, so that a few seconds of hammering cross many of them.
SHORT = (
    RateLimitRule(ORDERS, 1, 20),
    RateLimitRule(ORDERS, 2, 30),
    RateLimitRule(REQUEST_WEIGHT, 1, 40),
)
#: One long window: nothing drains noticeably during a test.
LONG = (RateLimitRule(ORDERS, 60, 20),)  # burst 10
LIFTED = (RateLimitRule(ORDERS, 60, 10**9),)


class Counting:
    """Counts the script calls a client makes (EVALSHA/EVAL)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.scripts = 0
        original = client.execute_command

        async def counted(*args: Any, **kwargs: Any) -> Any:
            if str(args[0]).upper() in ("EVALSHA", "EVAL"):
                self.scripts += 1
            return await original(*args, **kwargs)

        client.execute_command = counted  # type: ignore[method-assign]


def gate(
    redis: aioredis.Redis,
    prefix: str,
    rules: tuple[RateLimitRule, ...] = LONG,
    *,
    lease_ms: int = 200,
    fraction: str = "1",
    watch_pauses: bool = True,
) -> SharedRateLimiter:
    config = LimitsConfig(
        safety_margin=D(1),
        burst_fraction=D("0.5"),
        shared_lease_ms=lease_ms,
        shared_lease_fraction=D(fraction),
    )
    shared = SharedRateLimiter(
        VenueRateLimiter(config), redis, prefix=prefix, watch_pauses=watch_pauses
    )
    shared.configure(rules)
    return shared


async def take(limiter: SharedRateLimiter, n: int, deadline_s: float = 0.05) -> list[str]:
    out = []
    for _ in range(n):
        try:
            await limiter.acquire(weight=0, orders=1, deadline_s=deadline_s)
            out.append("ok")
        except ThrottleError as exc:
            out.append(str(exc.code))
    return out


async def level(redis: aioredis.Redis, limiter: SharedRateLimiter) -> float:
    spec = next(iter(limiter.local._buckets.values())).spec
    return float(await redis.hget(limiter.key(spec), "level") or 0)


def most_in_any_window(sends: list[tuple[float, int]], interval_s: float) -> int:
    """The largest sum of amounts sent within any span of ``interval_s`` seconds."""
    sends.sort()
    most, total, first = 0, 0, 0
    for at, amount in sends:
        total += amount
        while sends[first][0] <= at - interval_s:
            total -= sends[first][1]
            first += 1
        most = max(most, total)
    return most


async def test_daemons_hammering_one_account_never_exceed_a_window(
    redis: aioredis.Redis, prefix: str
) -> None:
    daemons = [gate(redis, prefix, SHORT, fraction="0.5") for _ in range(4)]
    sent: list[tuple[float, int, int]] = []  # when, weight, orders
    refused: dict[str, int] = defaultdict(int)
    rng = random.Random(7)
    stop = time.monotonic() + 3.0

    async def client(limiter: SharedRateLimiter, bursty: bool) -> None:
        while time.monotonic() < stop:
            weight, orders = rng.choice(((0, 1), (1, 1), (5, 0), (1, 0), (5, 5)))
            try:
                await limiter.acquire(weight=weight, orders=orders, deadline_s=0.3)
                sent.append((time.monotonic(), weight, orders))
            except ThrottleError as exc:
                refused[str(exc.code)] += 1
            if bursty and rng.random() < 0.1:
                await asyncio.sleep(rng.uniform(0.1, 0.4))  # lets its lease go stale
            else:
                await asyncio.sleep(rng.uniform(0, 0.01))

    await asyncio.gather(*(client(d, bursty=i % 2 == 0) for d in daemons for i in range(6)))
    for daemon in daemons:
        await daemon.close()
    assert set(refused) <= {"RATE_LIMITED"}, refused
    for spec in plan_windows(SHORT, daemons[0].local.config):
        amounts = [(at, amount_for(spec, weight=w, orders=o)) for at, w, o in sent]
        most = most_in_any_window(amounts, spec.interval_s)
        assert most <= spec.limit, (spec.name, most, spec.limit)
        assert most >= spec.limit * 0.6, (spec.name, most)  # it was really saturated


async def test_most_requests_pass_without_a_round_trip(redis: aioredis.Redis, prefix: str) -> None:
    counter = Counting(redis)
    limiter = gate(redis, prefix, LIFTED, fraction="0.1")
    assert await take(limiter, 300, deadline_s=1) == ["ok"] * 300
    await limiter.close()
    assert counter.scripts <= 20  # the lease doubles from one unit: ≈ log2(300) calls + one back


async def test_no_lease_makes_one_call_per_request(redis: aioredis.Redis, prefix: str) -> None:
    counter = Counting(redis)
    limiter = gate(redis, prefix, LIFTED, lease_ms=0)
    assert await take(limiter, 30, deadline_s=1) == ["ok"] * 30
    await limiter.close()
    assert counter.scripts == 30


async def grow_a_lease(redis: aioredis.Redis, limiter: SharedRateLimiter, n: int) -> float:
    """Spend ``n`` units through ``limiter``; the shared level then shows its lease."""
    assert await take(limiter, n) == ["ok"] * n
    held = await level(redis, limiter)
    assert held >= n + 1 - 0.1, held  # charged beyond what was spent: a lease
    return held


async def test_unused_units_go_back_on_close(redis: aioredis.Redis, prefix: str) -> None:
    a, b = gate(redis, prefix), gate(redis, prefix)
    await grow_a_lease(redis, a, 4)  # leases 1, 2, then 4: 4 spent, 3 held
    await a.close()
    assert await level(redis, a) == pytest.approx(4, abs=0.1)
    assert (await take(b, 10)).count("ok") == 6  # the burst of 10 less the 4 a spent


async def test_unused_units_go_back_when_the_lease_lapses(
    redis: aioredis.Redis, prefix: str
) -> None:
    a, b = gate(redis, prefix, lease_ms=100), gate(redis, prefix, lease_ms=100)
    await grow_a_lease(redis, a, 4)
    for _ in range(50):  # a timer gives the rest back once the lease is over
        await asyncio.sleep(0.05)
        if await level(redis, a) < 4.1:
            break
    assert await level(redis, a) == pytest.approx(4, abs=0.1)
    assert (await take(b, 10)).count("ok") == 6
    await a.close()
    await b.close()


async def test_a_pause_stops_a_daemon_holding_a_lease_at_once(
    redis: aioredis.Redis, prefix: str
) -> None:
    a = gate(redis, prefix, LIFTED, lease_ms=60_000)  # its lease alone would not stop it
    b = gate(redis, prefix, LIFTED)
    assert await take(a, 20) == ["ok"] * 20
    assert await take(b, 1) == ["ok"]
    b.pause(30)
    for _ in range(100):  # the pause is written and published without a request
        await asyncio.sleep(0.02)
        if a.paused_for() > 0:
            break
    assert 25 < a.paused_for() <= 30
    assert await take(a, 1) == ["VENUE_BANNED"]
    await a.close()
    await b.close()


async def test_without_the_channel_a_pause_stops_a_lease_holder_when_its_lease_ends(
    redis: aioredis.Redis, prefix: str
) -> None:
    a = gate(redis, prefix, LIFTED, lease_ms=300, watch_pauses=False)
    b = gate(redis, prefix, LIFTED)
    assert await take(a, 20) == ["ok"] * 20
    b.pause(30)
    await asyncio.sleep(0.1)  # written in the background
    await asyncio.sleep(0.3)  # the bound: shared_lease_ms after the pause was written
    assert await take(a, 1) == ["VENUE_BANNED"]
    assert a.paused_for() > 25
    await a.close()
    await b.close()


async def test_redis_unreachable_fails_closed() -> None:
    port = free_port()
    client = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    limiter = gate(client, "nowhere:")
    assert await take(limiter, 2) == ["STORE_UNAVAILABLE"] * 2
    await limiter.close()
    await client.aclose()


class Proxy:
    """A TCP relay to Redis that can be cut, as a network partition would."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        target = aioredis.from_url(REDIS_URL).connection_pool.connection_kwargs
        host, port = target.get("host", "127.0.0.1"), target.get("port", 6379)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(host, port)
            self.writers += [writer, up_writer]
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        self.server = await asyncio.start_server(relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


async def test_redis_lost_while_holding_a_lease_fails_closed_once_it_is_spent(
    prefix: str,
) -> None:
    proxy = Proxy()
    port = await proxy.start()
    db = REDIS_URL.rsplit("/", 1)[-1]
    client = aioredis.from_url(f"redis://127.0.0.1:{port}/{db}", socket_connect_timeout=0.5)
    limiter = gate(client, prefix, LIFTED, lease_ms=60_000, fraction="0.1")
    assert await take(limiter, 10) == ["ok"] * 10
    await proxy.cut()
    got = await take(limiter, 100)
    # units already leased were charged: spending them stays within the limits; the
    # first request beyond them is refused, typed, and never reaches the venue
    assert "STORE_UNAVAILABLE" in got
    assert set(got[got.index("STORE_UNAVAILABLE") :]) == {"STORE_UNAVAILABLE"}
    assert got.count("ok") <= 16  # no more than it leased
    await limiter.close()
    await client.aclose()


async def test_units_spent_at_the_end_of_their_lease_still_keep_the_window(
    redis: aioredis.Redis, prefix: str
) -> None:
    """The worst case of leasing: units charged when the bucket was empty, held for
    nearly the whole lease and spent when another daemon finds the bucket drained. The
    venue's window then sees them on top of a full burst and drain — unless the shared
    bucket drains slower by T/(T + L), as it does (for every daemon, whatever its own
    lease: here the one that finds the bucket drained leases nothing)."""
    rules = (RateLimitRule(ORDERS, 1, 80),)  # burst 40, then 40/s
    a = gate(redis, prefix, rules, lease_ms=250)
    b = gate(redis, prefix, rules, lease_ms=0)  # sends what it is charged, at once
    sent: list[tuple[float, int]] = []

    async def send(limiter: SharedRateLimiter, n: int, deadline_s: float) -> None:
        for _ in range(n):
            await limiter.acquire(weight=0, orders=1, deadline_s=deadline_s)
            sent.append((time.monotonic(), 1))

    await send(a, 31, 0.05)  # a's lease grows 1, 2, 4, 8, 16, all spent
    await asyncio.sleep(1.3)  # the bucket drains empty; a's lease size stays 16
    await send(a, 1, 0.05)  # leases 16 at once: 15 held
    assert await level(redis, a) > 15
    await asyncio.sleep(0.23)  # almost the whole lease

    async def saturate() -> None:
        stop = time.monotonic() + 1.2
        while time.monotonic() < stop:
            await send(b, 1, 2.0)

    await asyncio.gather(send(a, 15, 0.05), saturate())
    assert most_in_any_window(sent, 1.0) <= 80
    await a.close()
    await b.close()
