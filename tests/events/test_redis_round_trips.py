"""Round trips to Redis per fill and per order change, with the shared event sequence.

The store's script numbers the events it stores (oexec/events/sequence.py, "Numbered by
the store"), so a fill is one round trip from the writer's call to the event on PUB (it
was two: ``add_fill``, then the sequence's APPEND). Counted, not timed: every packed
write to a Redis socket in this process is one round trip.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import msgpack
import pytest
import redis.asyncio as aioredis
import zmq
import zmq.asyncio
from redis.asyncio.connection import AbstractConnection

from oexec.errors import StoreConflictError
from oexec.events.sequence import SharedSequenceSink, read_after
from oexec.models import OrderState
from oexec.service.outbox import order_events, pack_events
from oexec.service.writer import OrderWriter
from oexec.store import RedisStore
from oexec.store.redis_connect import connect

from ..store.helpers import REDIS_URL, make_fill, make_order


class RoundTrips:
    """Counts packed writes to any Redis connection (a pipeline is one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = AbstractConnection.send_packed_command

        async def counted(conn: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            await original(conn, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)


@attrs.define
class Rig:
    store: RedisStore
    sink: SharedSequenceSink
    writer: OrderWriter
    sub: zmq.asyncio.Socket
    prefix: str

    async def next_event(self) -> tuple[str, dict[str, Any]]:
        topic, data = await asyncio.wait_for(self.sub.recv_multipart(), 5)
        return topic.decode(), msgpack.unpackb(data, raw=False)

    async def stream(self) -> list[tuple[str, dict[str, Any]]]:
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            return await read_after(client, f"{self.prefix}events", 0)
        finally:
            await client.aclose()


Parts = tuple[RedisStore, SharedSequenceSink, aioredis.Redis, Any]


async def numbering_daemon(prefix: str) -> Parts:
    """What a daemon on Redis has, as in app.py: the store's client and the shared
    parts' client on one Redis, the store numbering its events, a SUB on the PUB."""
    store = RedisStore.from_url(REDIS_URL, prefix=prefix)
    shared = connect(REDIS_URL, timeout_s=2.0, max_connections=16)
    sink = SharedSequenceSink(("tcp://127.0.0.1:*",), redis=shared, prefix=prefix)
    assert store.number_events(sink)
    await store.start()
    await sink.start()
    sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(sink.endpoints[0])
    return store, sink, shared, sub


async def stop_daemon(parts: Parts) -> None:
    store, sink, shared, sub = parts
    sub.close(linger=0)
    await sink.close()
    await store.close()
    await shared.aclose()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    prefix = f"oexec-test:{uuid.uuid4().hex}:"
    parts = await numbering_daemon(prefix)
    store, sink, _, sub = parts
    await asyncio.sleep(0.3)  # the SUB socket joins; the sink's first trim is done
    yield Rig(store, sink, OrderWriter(store, sink), sub, prefix)
    await stop_daemon(parts)
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_a_fill_is_one_round_trip_from_store_to_pub(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = make_order()
    trips = RoundTrips(monkeypatch)
    assert await rig.writer.record_fill(make_fill(order, 1))
    topic, event = await rig.next_event()
    assert trips.count == 1  # add_fill numbered the event; no APPEND before the PUB
    assert topic == "fill" and event["fill"]["trade_id"] == 1
    logged = await rig.stream()
    assert [(t, e["seq"], e["topic_seq"]) for t, e in logged] == [
        ("fill", event["seq"], event["topic_seq"])
    ]
    assert logged[0][1]["epoch"] == event["epoch"] == rig.sink.epoch
    assert rig.sink.numbered_by_store == 1

    trips.count = 0
    assert not await rig.writer.record_fill(make_fill(order, 1))  # the same trade again
    assert trips.count == 1
    assert len(await rig.stream()) == 1


async def test_an_order_change_is_one_round_trip_and_replays(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = make_order()
    assert (await rig.writer.claim(order, 60)).claimed
    trips = RoundTrips(monkeypatch)
    new = attrs.evolve(order, state=OrderState.NEW, version=2)
    await rig.writer.commit(order, new, reason="answer")
    topic, event = await rig.next_event()
    assert trips.count == 1
    assert topic == "order.created" and event["order"]["id"] == order.id
    page = await rig.sink.replay(0, [], 100)
    assert [(e["topic"], e["seq"]) for e in page["events"]] == [(topic, event["seq"])]


async def test_a_retried_save_logs_its_events_once(rig: Rig) -> None:
    """A save whose reply was lost is sent again: the script answers with the numbers its
    events got the first time instead of numbering them again."""
    order = make_order()
    await rig.store.claim(order, 60)
    new = attrs.evolve(order, state=OrderState.NEW, version=2)
    events = pack_events(order_events(order, new))
    await rig.store.save(new, reason="answer", events=events)
    first = dict(rig.sink._numbered)
    rig.sink._numbered.clear()
    await rig.store.save(new, reason="answer", events=events)  # the retry
    assert rig.sink._numbered.keys() == first.keys()
    assert [v[:2] for v in rig.sink._numbered.values()] == [v[:2] for v in first.values()]
    assert len(await rig.stream()) == 1


async def test_concurrent_fills_reach_pub_in_sequence_order(rig: Rig) -> None:
    order = make_order()
    results = await asyncio.gather(
        *(rig.writer.record_fill(make_fill(order, n)) for n in range(1, 65))
    )
    assert all(results)
    seen = [(await rig.next_event())[1] for _ in range(64)]
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(seqs) == list(range(seqs[0], seqs[0] + 64))
    logged = await rig.stream()
    assert [e["seq"] for _, e in logged] == seqs
    assert sorted(e["fill"]["trade_id"] for _, e in logged) == list(range(1, 65))
    assert rig.sink.numbered_by_store == 64


async def test_two_daemons_and_a_restart_share_one_sequence() -> None:
    """Stores numbering events on one Redis (two daemons, then one of them restarted):
    one gap-free sequence in the stream, each daemon's PUB in order (issue 17)."""
    prefix = f"oexec-test:{uuid.uuid4().hex}:"

    async def seqs_on_pub(sub: Any, n: int) -> list[int]:
        out = []
        for _ in range(n):
            _, data = await asyncio.wait_for(sub.recv_multipart(), 5)
            out.append(msgpack.unpackb(data, raw=False)["seq"])
        return out

    one, two = await numbering_daemon(prefix), await numbering_daemon(prefix)
    await asyncio.sleep(0.3)
    order = make_order()
    writers = [OrderWriter(one[0], one[1]), OrderWriter(two[0], two[1])]
    await asyncio.gather(*(writers[n % 2].record_fill(make_fill(order, n)) for n in range(1, 41)))
    first, second = await seqs_on_pub(one[3], 20), await seqs_on_pub(two[3], 20)
    assert first == sorted(first) and second == sorted(second)
    assert sorted(first + second) == list(range(1, 41))
    await stop_daemon(one)
    again = await numbering_daemon(prefix)  # the first daemon restarted: numbering goes on
    await asyncio.sleep(0.3)
    assert await OrderWriter(again[0], again[1]).record_fill(make_fill(order, 41))
    assert await seqs_on_pub(again[3], 1) == [41]
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        logged = await read_after(client, f"{prefix}events", 0)
        assert [e["seq"] for _, e in logged] == list(range(1, 42))
        assert len({e["epoch"] for _, e in logged}) == 1
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        await client.delete(*keys)
    finally:
        await client.aclose()
        await stop_daemon(two)
        await stop_daemon(again)


async def test_a_save_that_loses_holds_no_later_event_back(rig: Rig) -> None:
    """A numbering call that numbers nothing (a lost compare-and-set) settles its ticket:
    the next fill still reaches PUB."""
    order = make_order()
    await rig.store.claim(order, 60)
    stale = attrs.evolve(order, state=OrderState.NEW, version=3)  # not stored + 1
    with pytest.raises(StoreConflictError):
        await rig.store.save(stale, reason="x", events=pack_events(order_events(order, stale)))
    assert not rig.sink._tickets
    assert await rig.writer.record_fill(make_fill(order, 7))
    topic, event = await rig.next_event()
    assert topic == "fill" and event["fill"]["trade_id"] == 7
    assert [e["seq"] for _, e in await rig.stream()] == [event["seq"]]
