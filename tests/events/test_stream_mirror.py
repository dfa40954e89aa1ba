"""Redis Stream mirror against a real Redis (unique key per test, deleted afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import msgpack
import pytest
import redis.asyncio as aioredis

from oexec.events import ZmqEventSink
from oexec.events.mirror import StreamMirror, seq_of

REDIS_URL = os.environ.get("OEXEC_TEST_REDIS", "redis://127.0.0.1:6379/15")

pytestmark = pytest.mark.redis


@pytest.fixture
async def key(redis: aioredis.Redis) -> AsyncIterator[str]:
    name = f"test:oexec:events:{uuid.uuid4().hex}"
    yield name
    await redis.delete(name)


async def test_mirror_same_seq_and_payload_then_continue(redis: aioredis.Redis, key: str) -> None:
    sink = ZmqEventSink(["tcp://127.0.0.1:*"], redis=redis, stream_key=key, maxlen=1000)
    await sink.start()
    seqs = [await sink.publish("fill", {"n": n}) for n in range(5)]
    await sink.close()
    assert seqs == [1, 2, 3, 4, 5]
    entries = await redis.xrange(key)
    assert [seq_of(entry_id) for entry_id, _ in entries] == seqs
    first = msgpack.unpackb(entries[0][1][b"data"])
    assert first["seq"] == 1 and first["n"] == 0 and first["topic"] == "fill"
    assert entries[4][1][b"topic"] == b"fill" and entries[4][1][b"seq"] == b"5"
    assert sink.mirror is not None and sink.mirror.written == 5 and sink.mirror.dropped == 0

    again = ZmqEventSink(["tcp://127.0.0.1:*"], redis=redis, stream_key=key, maxlen=1000)
    await again.start()
    assert await again.publish("order.created", {}) == 6
    await again.close()
    assert seq_of((await redis.xrevrange(key, count=1))[0][0]) == 6


async def test_mirror_trims_to_maxlen(redis: aioredis.Redis, key: str) -> None:
    sink = ZmqEventSink([], redis=redis, stream_key=key, maxlen=10)
    await sink.start()
    for _ in range(500):
        await sink.publish("fill", {})
    await sink.close()
    length = await redis.xlen(key)
    assert 10 <= length < 500  # approximate trimming (MAXLEN ~)
    assert seq_of((await redis.xrevrange(key, count=1))[0][0]) == 500


async def test_refused_entry_is_counted_not_retried(redis: aioredis.Redis, key: str) -> None:
    await redis.xadd(key, {"seq": 100}, id="100-0")
    mirror = StreamMirror(redis, key, maxlen=100)
    mirror.start()
    mirror.offer(5, "fill", b"x")  # below the stream's top: Redis refuses it
    mirror.offer(101, "fill", b"y")
    await mirror.close()
    assert (mirror.dropped, mirror.written) == (1, 1)


async def test_redis_down_never_blocks_publish() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    mirror = StreamMirror(dead, "k", maxlen=10, buffer_size=3)
    mirror.start()
    sink_like_offers = [mirror.offer(seq, "fill", b"x") for seq in range(1, 11)]
    assert sink_like_offers == [None] * 10
    await mirror.close(timeout_s=0.3)
    assert mirror.written == 0
    assert mirror.dropped == 10  # 7 refused by the full buffer, 3 unwritten at close
    await dead.aclose()


async def test_flush_returns_once_the_stream_has_every_event_published_before(
    redis: aioredis.Redis, key: str
) -> None:
    """The outbox acknowledges an event only past this point: it must mean "written"."""
    sink = ZmqEventSink([], redis=redis, stream_key=key, maxlen=1000)
    await sink.start()
    try:
        for n in range(50):
            await sink.publish("fill", {"n": n})
        await sink.flush()
        assert len(await redis.xrange(key)) == 50
        await sink.flush()  # nothing new: returns at once
    finally:
        await sink.close()
