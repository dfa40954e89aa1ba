"""The shared parts one by one, against the real Redis (and nats-server): limiter,
breaker, lease, event sequence, JetStream mirror."""

from __future__ import annotations

import asyncio
import socket
import uuid
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from oexec.breaker import CLOSED, OPEN
from oexec.breaker.shared import SharedVenueBreaker
from oexec.config import BreakerConfig, LimitsConfig, NatsConfig
from oexec.errors import ThrottleError, VenueUnavailableError
from oexec.events.sequence import SharedSequenceSink, read_after
from oexec.limits import VenueRateLimiter
from oexec.limits.shared import SharedRateLimiter
from oexec.limits.windows import ORDERS
from oexec.models import RateLimitRule
from oexec.service.lease import LeaseLost, RedisLease

from ..e2e.conftest import REDIS_URL
from ..ports import free_port

ONE_WINDOW = (RateLimitRule(ORDERS, 60, 10),)  # burst 5, then 5 per minute


def limiter(redis: aioredis.Redis, prefix: str) -> SharedRateLimiter:
    local = VenueRateLimiter(LimitsConfig(safety_margin=Decimal(1), burst_fraction=Decimal("0.5")))
    shared = SharedRateLimiter(local, redis, prefix=prefix)
    shared.configure(ONE_WINDOW)
    return shared


async def outcomes(gate: SharedRateLimiter, n: int) -> list[str]:
    out = []
    for _ in range(n):
        try:
            await gate.acquire(weight=0, orders=1, deadline_s=0.05)
            out.append("ok")
        except ThrottleError as exc:
            out.append(str(exc.code))
    return out


async def test_two_limiters_draw_from_one_bucket(redis: aioredis.Redis, prefix: str) -> None:
    a, b = limiter(redis, prefix), limiter(redis, prefix)
    got = await outcomes(a, 3) + await outcomes(b, 5)
    # alone, each would send its whole burst of 5; together they share one
    assert got.count("ok") == 5, got
    assert set(got) == {"ok", "RATE_LIMITED"}


async def test_a_429_pause_in_one_daemon_stops_the_others(
    redis: aioredis.Redis, prefix: str
) -> None:
    a, b = limiter(redis, prefix), limiter(redis, prefix)
    a.pause(30)
    await asyncio.sleep(0.1)  # the shared pause is written in the background
    assert await outcomes(b, 1) == ["VENUE_BANNED"]
    assert b.paused_for() > 0


async def test_venue_headers_raise_the_shared_view(redis: aioredis.Redis, prefix: str) -> None:
    a, b = limiter(redis, prefix), limiter(redis, prefix)
    a.observe({("ORDERS", 60): 10})  # the venue counts 10 orders nobody here sent
    for _ in range(50):
        await asyncio.sleep(0.02)
        if not a._background:
            break
    assert await outcomes(b, 1) == ["RATE_LIMITED"]


async def test_headers_this_daemon_explains_cost_no_redis_call(
    redis: aioredis.Redis, prefix: str
) -> None:
    """A venue count no higher than this daemon's own sends in the window changes nothing
    shared (the correction script would answer 0): no round trip for it. A higher one
    is still sent."""
    a = limiter(redis, prefix)
    assert await outcomes(a, 3) == ["ok"] * 3
    a.observe({("ORDERS", 60): 3})
    assert not a._pending and a._feedback is None
    a.observe({("ORDERS", 60): 9})
    assert a._feedback is not None
    await a.close()


async def test_redis_unreachable_fails_closed_with_a_typed_error() -> None:
    port = free_port()
    client = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    gate = limiter(client, "nowhere:")
    assert await outcomes(gate, 1) == ["STORE_UNAVAILABLE"]
    await client.aclose()


async def test_lease_has_one_holder_and_fences_the_old_one(
    redis: aioredis.Redis, prefix: str
) -> None:
    key = f"{prefix}userstream:lease"
    a = RedisLease(redis, key, "a", ttl_s=0.3, recheck_s=0)
    b = RedisLease(redis, key, "b", ttl_s=0.3, recheck_s=0)
    first = await a.try_acquire()
    assert first > 0 and await b.try_acquire() == 0
    await a.check()  # still ours
    await asyncio.sleep(0.4)  # a stops renewing (paused, partitioned, dead)
    second = await b.try_acquire()
    assert second > first  # the fencing token grows with every new holder
    assert not await a.renew()
    with pytest.raises(LeaseLost):
        await a.check()
    await a.release()  # must not delete b's lease
    await b.check()
    await b.release()
    assert await redis.get(key) is None


async def test_a_lease_lost_with_its_key_is_noticed_within_recheck_s_without_a_get_per_event(
    redis: aioredis.Redis, prefix: str
) -> None:
    """The key vanishes (a Redis restart without persistence) and a standby takes it while
    the old holder's local deadline still runs: the old holder's next read of Redis, at
    most ``recheck_s`` later, stops it; events in between cost no round trip."""
    key = f"{prefix}userstream:lease"
    now = [0.0]
    a = RedisLease(redis, key, "a", ttl_s=30, recheck_s=0.1, clock=lambda: now[0])
    assert await a.try_acquire() > 0
    gets = 0
    original = redis.get

    async def counted(name: str) -> object:
        nonlocal gets
        gets += 1
        return await original(name)

    redis.get = counted  # type: ignore[method-assign]
    try:
        for _ in range(50):  # a burst of stream events within 0.1 s
            await a.check()
        assert gets == 1
        await redis.delete(key)
        b = RedisLease(redis, key, "b", ttl_s=30)
        assert await b.try_acquire() > 0
        await a.check()  # not re-read yet: inside the bound
        now[0] += 0.1
        with pytest.raises(LeaseLost):
            await a.check()
        assert gets == 2
    finally:
        redis.get = original  # type: ignore[method-assign]


async def test_breaker_failures_add_up_and_open_every_daemon(
    redis: aioredis.Redis, prefix: str
) -> None:
    config = BreakerConfig(failure_threshold=3, recovery_timeout_s=30)
    a = SharedVenueBreaker(config, redis, prefix=prefix, sync_s=0.05)
    b = SharedVenueBreaker(config, redis, prefix=prefix, sync_s=0.05)

    async def fail() -> None:
        raise VenueUnavailableError("down")

    for breaker in (a, a, b):  # 2 + 1: neither alone reaches the threshold
        with pytest.raises(VenueUnavailableError):
            await breaker.call(fail)
    await asyncio.sleep(0.1)  # background writes
    await a.sync()
    await b.sync()
    assert a.state == OPEN and b.state == OPEN
    assert 25 < b.retry_after_s() <= 30
    c = SharedVenueBreaker(config, redis, prefix=prefix)  # a daemon started later
    assert c.state == CLOSED
    await c.sync()
    assert c.state == OPEN


async def test_a_success_clears_the_shared_failures_only_when_there_may_be_some(
    redis: aioredis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Redis call per successful order while nobody counts failures; a failure
    counted by this daemon, or seen counted by another at the last read, is cleared."""
    config = BreakerConfig(failure_threshold=3, recovery_timeout_s=30)
    a = SharedVenueBreaker(config, redis, prefix=prefix, sync_s=0.05)
    b = SharedVenueBreaker(config, redis, prefix=prefix, sync_s=0.05)
    failures = a._failures_key

    async def ok() -> None:
        return None

    async def fail() -> None:
        raise VenueUnavailableError("down")

    await a.call(ok)  # unknown at start: cleared once
    await asyncio.sleep(0.05)
    deletes: list[tuple[str, ...]] = []
    real_delete = redis.delete

    def counting_delete(*keys: str) -> object:
        deletes.append(keys)
        return real_delete(*keys)

    monkeypatch.setattr(redis, "delete", counting_delete)
    for _ in range(5):
        await a.call(ok)
    assert deletes == []  # nothing counted: no round trip per success
    with pytest.raises(VenueUnavailableError):
        await b.call(fail)  # another daemon counts a failure
    await asyncio.sleep(0.05)
    assert int(await redis.get(failures) or 0) == 1
    await a.sync()  # the periodic read sees it
    await a.call(ok)
    await asyncio.sleep(0.05)
    assert deletes and await redis.get(failures) is None


async def test_sequence_append_is_gap_free_across_sinks_and_safe_to_retry(
    redis: aioredis.Redis, prefix: str
) -> None:
    sinks = [
        SharedSequenceSink(("tcp://127.0.0.1:*",), redis=redis, prefix=prefix) for _ in range(2)
    ]
    for sink in sinks:
        await sink.start()
    await asyncio.gather(*(sink.publish("fill", {"n": n}) for n in range(20) for sink in sinks))
    for sink in sinks:
        await sink.close()
    events = await read_after(redis, f"{prefix}events", 0)
    assert [e["seq"] for _, e in events] == list(range(1, 41))
    assert [e["topic_seq"] for _, e in events] == list(range(1, 41))
    assert len({e["epoch"] for _, e in events}) == 1  # one deployment id (issue 17)
    assert len({e["src"] for _, e in events}) == 2  # each daemon run names itself
    # a batch whose reply was lost is sent again: same sequences, nothing appended
    again = SharedSequenceSink(("tcp://127.0.0.1:*",), redis=redis, prefix=prefix)
    batch = [(1, "fill", {"n": "x"}), (2, "fill", {"n": "y"})]
    first = await again._append_until_done(batch)
    assert first == await again._append_until_done(batch)
    assert len(await read_after(redis, f"{prefix}events", 0)) == 42


def nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not nats_up(), reason="no nats-server on 127.0.0.1:4222 (scripts/test)")
async def test_nats_mirror_publishes_each_event_once_on_its_subject() -> None:
    import nats

    from oexec.events.nats_sink import NatsEventSink

    name = f"OEXECTEST{uuid.uuid4().hex[:8].upper()}"
    subject_prefix = f"oexectest{uuid.uuid4().hex[:8]}"
    config = NatsConfig(url="nats://127.0.0.1:4222", stream=name, subject_prefix=subject_prefix)
    sink = NatsEventSink(config, src=lambda: "deploy1")
    await sink.start()
    sink.offer(1, "order.created", b"one")
    sink.offer(2, "fill", b"two")
    sink.offer(1, "order.created", b"one")  # re-published after a restart
    await sink.close()
    assert (sink.published, sink.duplicates) == (3, 1)
    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        js = nc.jetstream()
        info = await js.stream_info(name)
        assert info.state.messages == 2
        first = await js.get_msg(name, 1)
        second = await js.get_msg(name, 2)
        assert (first.subject, first.data) == (f"{subject_prefix}.order.created", b"one")
        assert (second.subject, second.data) == (f"{subject_prefix}.fill", b"two")
        assert first.headers is not None and first.headers["Nats-Msg-Id"] == "deploy1:1"
        await js.delete_stream(name)
    finally:
        await nc.close()


async def test_watch_from_replays_the_stream(
    redis: aioredis.Redis, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from oexec.cli.main import main

    sink = SharedSequenceSink(("tcp://127.0.0.1:*",), redis=redis, prefix=prefix)
    await sink.start()
    for n in range(5):
        await sink.publish("order.created", {"n": n})
    await sink.close()
    argv = ["watch", "--from", "2", "--redis", REDIS_URL, "--stream-key", f"{prefix}events"]
    code = await asyncio.to_thread(main, [*argv, "--count", "3", "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["seq"], e["n"]) for e in lines] == [(3, 2), (4, 3), (5, 4)]


async def test_shared_sequence_flush_waits_for_the_append(
    redis: aioredis.Redis, prefix: str
) -> None:
    sink = SharedSequenceSink(("tcp://127.0.0.1:*",), redis=redis, prefix=prefix)
    await sink.start()
    try:
        for n in range(30):
            assert await sink.publish("fill", {"n": n}) == 0  # queued, numbered later
        await sink.flush()
        assert len(await read_after(redis, f"{prefix}events", 0)) == 30
    finally:
        await sink.close()
