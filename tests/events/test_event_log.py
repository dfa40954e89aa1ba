"""Issue 17: one sequence that survives restarts, replay on either store, healing.

Real stores (a SQLite file, the test Redis under a per-test prefix), real PUB/SUB and a
real request socket (FrontEnd) serving the ``replay`` op from the sink's log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import zmq

from oexec.client import AsyncClient, Gap, ReplayError, Subscriber
from oexec.config import FrontConfig
from oexec.errors import ErrorCode, ReplayExpiredError
from oexec.events.logged import LoggedSequenceSink, replay_page
from oexec.events.publisher import ZmqEventSink
from oexec.events.sequence import SharedSequenceSink
from oexec.events.store_log import StoreSequenceSink
from oexec.front.router import FrontEnd
from oexec.front.testing import InMemoryOrderService
from oexec.store import SqliteStore

from ..ports import free_port

pytestmark = pytest.mark.timeout(60)

SinkFactory = Callable[[str], Awaitable[LoggedSequenceSink]]


async def start_bound(sink: ZmqEventSink) -> None:
    """Start a sink on the port a sink just closed: ZeroMQ lets go of it asynchronously
    (a restarted daemon is a new process; here the same one rebinds at once)."""
    for _ in range(40):
        try:
            await sink.start()
            return
        except zmq.ZMQError:
            await sink.close()
            await asyncio.sleep(0.05)
    await sink.start()


class ReplayService(InMemoryOrderService):
    """The in-memory service with the real ``replay`` of a sink's log."""

    def __init__(self) -> None:
        super().__init__()
        self.sink: LoggedSequenceSink | None = None

    async def replay(
        self, from_seq: int, *, topics: Sequence[str] = (), limit: int = 500
    ) -> dict[str, Any]:
        assert self.sink is not None
        return await self.sink.replay(from_seq, topics, limit)


@pytest.fixture(params=["sqlite", "redis"])
async def make_sink(
    request: pytest.FixtureRequest, tmp_path: Path, redis: aioredis.Redis, prefix: str
) -> AsyncIterator[SinkFactory]:
    """Opens sinks on one store (each call: a new daemon run on the same data)."""
    opened: list[Any] = []
    if request.param == "sqlite":
        store = SqliteStore(str(tmp_path / "events.sqlite"))
        await store.start()

        async def sqlite_sink(endpoint: str) -> LoggedSequenceSink:
            sink = StoreSequenceSink([endpoint], store=store, retention_events=100_000)
            await start_bound(sink)
            opened.append(sink)
            return sink

        yield sqlite_sink
        for sink in opened:
            await sink.close()
        await store.close()
        return

    async def redis_sink(endpoint: str) -> LoggedSequenceSink:
        sink = SharedSequenceSink([endpoint], redis=redis, prefix=prefix)
        await start_bound(sink)
        opened.append(sink)
        return sink

    yield redis_sink
    for sink in opened:
        await sink.close()


async def publish(sink: LoggedSequenceSink, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        topic = "fill" if n % 3 == 0 else "order.updated"
        await sink.publish(topic, {"n": n})
    await sink.flush()


async def test_sequence_continues_after_a_restart_and_replay_pages(make_sink: SinkFactory) -> None:
    first = await make_sink(f"tcp://127.0.0.1:{free_port()}")
    await publish(first, 5)
    run_one = first.src
    await first.close()
    second = await make_sink(f"tcp://127.0.0.1:{free_port()}")
    assert second.last_seq == 5 and second.src != run_one and second.epoch == first.epoch
    await publish(second, 5, start=5)
    assert second.last_seq == 10

    page = await second.replay(1, (), 4)
    assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4]
    assert page["next_seq"] == 5 and page["last_seq"] == 10 and page["oldest_seq"] == 1
    rest = await second.replay(page["next_seq"], (), 100)
    assert [e["n"] for e in rest["events"]] == list(range(4, 10))
    assert rest["next_seq"] == 11
    assert {e["src"] for e in rest["events"]} == {run_one, second.src}
    fills = await second.replay(0, ("fill",), 100)
    assert [e["n"] for e in fills["events"]] == [0, 3, 6, 9]
    assert [e["topic_seq"] for e in fills["events"]] == [1, 2, 3, 4]  # continued too


async def test_replay_older_than_retention_is_a_typed_error(make_sink: SinkFactory) -> None:
    sink = await make_sink(f"tcp://127.0.0.1:{free_port()}")
    await publish(sink, 6)
    sink.retention_s = 0.0  # every event is now past the window
    await asyncio.sleep(0.01)
    assert await sink.trim() == 6
    with pytest.raises(ReplayExpiredError) as caught:
        await sink.replay(3, (), 10)
    assert caught.value.code is ErrorCode.REPLAY_EXPIRED
    assert caught.value.details == {"from_seq": 3, "oldest_seq": 7}
    assert "retention" in caught.value.message
    await publish(sink, 2, start=6)
    assert [e["seq"] for e in (await sink.replay(7, (), 10))["events"]] == [7, 8]
    assert [e["seq"] for e in (await sink.replay(0, (), 10))["events"]] == [7, 8]


def test_replay_page_is_pure() -> None:
    with pytest.raises(ReplayExpiredError):
        replay_page([], from_seq=2, topics=(), limit=5, trimmed_through=2, last_seq=9)
    page = replay_page([], from_seq=20, topics=(), limit=5, trimmed_through=0, last_seq=9)
    assert page == {"events": [], "next_seq": 20, "last_seq": 9, "oldest_seq": 1, "epoch": ""}


async def _front(service: ReplayService) -> FrontEnd:
    front = FrontEnd(service, FrontConfig(listen=(f"tcp://127.0.0.1:{free_port()}",)))
    await front.start()
    return front


async def _collect(sub: Subscriber, count: int, timeout_s: float = 10.0) -> list[Any]:
    async with asyncio.timeout(timeout_s):
        return [await sub.receive() for _ in range(count)]


async def test_late_subscriber_replays_1000_then_follows_live(make_sink: SinkFactory) -> None:
    pub = f"tcp://127.0.0.1:{free_port()}"
    sink = await make_sink(pub)
    service = ReplayService()
    service.sink = sink
    front = await _front(service)
    try:
        await publish(sink, 1000)
        started = time.monotonic()
        async with AsyncClient(front.endpoints[0]) as client:
            with client.subscribe(pub, from_seq=0) as sub:
                replayed = await _collect(sub, 1000)
                assert [e.seq for e in replayed] == list(range(1, 1001))
                assert sub.replayed == 1000
                await asyncio.sleep(0.3)  # the SUB socket joins
                await publish(sink, 50, start=1000)
                live = await _collect(sub, 50)
        assert [e.seq for e in live] == list(range(1001, 1051))
        assert all(e.gap is None for e in replayed + live)
        assert time.monotonic() - started < 20
    finally:
        await front.stop()


async def test_subscriber_heals_across_a_restart(make_sink: SinkFactory) -> None:
    """Events published while the subscriber cannot hear them (the daemon restarted on the
    same PUB port, redelivering at once) come back through replay, in order, once."""
    pub = f"tcp://127.0.0.1:{free_port()}"
    sink = await make_sink(pub)
    service = ReplayService()
    service.sink = sink
    front = await _front(service)
    try:
        async with AsyncClient(front.endpoints[0]) as client:
            with client.subscribe(pub, from_seq=0) as sub:
                await asyncio.sleep(0.3)
                await publish(sink, 10)
                before = await _collect(sub, 10)
                await sink.close()
                restarted = await make_sink(pub)  # same port: the SUB reconnects
                service.sink = restarted
                await publish(restarted, 20, start=10)  # before the reconnect: unheard
                await asyncio.sleep(0.5)
                await publish(restarted, 5, start=30)
                after = await _collect(sub, 25)
        events = before + after
        assert [e.seq for e in events] == list(range(1, 36))
        assert [e.data["n"] for e in events] == list(range(35))
        assert all(e.gap is None for e in events)
    finally:
        await front.stop()


async def test_replay_op_on_the_wire(make_sink: SinkFactory) -> None:
    sink = await make_sink(f"tcp://127.0.0.1:{free_port()}")
    service = ReplayService()
    service.sink = sink
    front = await _front(service)
    try:
        await publish(sink, 4)
        async with AsyncClient(front.endpoints[0]) as client:
            page = await client.replay(2, topics=["order."], limit=10)
            assert [e["seq"] for e in page["events"]] == [2, 3]
            sink.retention_s = 0.0
            await asyncio.sleep(0.01)
            await sink.trim()
            with pytest.raises(ReplayError) as caught:
                await client.replay(1)
            assert caught.value.code == "REPLAY_EXPIRED"
            with pytest.raises(Exception, match="limit"):
                await client.replay(1, limit=5000)
    finally:
        await front.stop()


async def test_topic_subscriber_heals_only_its_topics(make_sink: SinkFactory) -> None:
    """Subscribed to some topics: a topic_seq jump (or a topic not seen since the last
    delivered event) triggers a replay of those topics only."""
    pub = f"tcp://127.0.0.1:{free_port()}"
    sink = await make_sink(pub)
    service = ReplayService()
    service.sink = sink
    front = await _front(service)
    try:
        async with AsyncClient(front.endpoints[0]) as client:
            with client.subscribe(pub, ["fill"], from_seq=0) as sub:
                await asyncio.sleep(0.3)
                await publish(sink, 9)  # fills are n = 0, 3, 6
                before = await _collect(sub, 3)
                await sink.close()
                restarted = await make_sink(pub)
                service.sink = restarted
                await publish(restarted, 9, start=9)  # fills 9, 12, 15: unheard
                await asyncio.sleep(0.5)
                await publish(restarted, 3, start=18)  # fill 18
                after = await _collect(sub, 4)
        events = before + after
        assert [e.data["n"] for e in events] == [0, 3, 6, 9, 12, 15, 18]
        assert [e.topic_seq for e in events] == list(range(1, 8))
        assert {e.topic for e in events} == {"fill"} and all(e.gap is None for e in events)
    finally:
        await front.stop()


async def test_without_a_log_the_subscriber_reports_the_gap() -> None:
    """A daemon that keeps no event log answers REPLAY_UNAVAILABLE: the subscriber does
    not wait for it; the events it could not fetch are reported as a gap."""
    pub = f"tcp://127.0.0.1:{free_port()}"
    sink = ZmqEventSink([pub])  # numbers in memory, keeps nothing
    await sink.start()
    service = ReplayService()
    service.sink = sink  # type: ignore[assignment]  (its replay: REPLAY_UNAVAILABLE)
    front = await _front(service)
    try:
        async with AsyncClient(front.endpoints[0]) as client:
            with client.subscribe(pub) as sub:
                await asyncio.sleep(0.3)
                await sink.publish("fill", {"n": 0})
                [first] = await _collect(sub, 1)
                sink._seq += 5  # five events this subscriber never heard
                await sink.publish("fill", {"n": 6})
                [second] = await _collect(sub, 1)
        assert first.gap is None
        assert second.gap == Gap(2, 6) and sub.replay_failures == 1
    finally:
        await front.stop()
        await sink.close()


async def test_a_new_epoch_is_replayed_from_its_first_event(tmp_path: Path) -> None:
    """The log was lost (a new SQLite file) and the daemon restarted on the same port:
    a new epoch, seq from 1. The subscriber starts counting afresh and replays the new
    log's first events it could not hear."""
    pub = f"tcp://127.0.0.1:{free_port()}"
    stores = [SqliteStore(str(tmp_path / f"log{n}.sqlite")) for n in range(2)]
    for store in stores:
        await store.start()
    sink = StoreSequenceSink([pub], store=stores[0])
    await sink.start()
    service = ReplayService()
    service.sink = sink
    front = await _front(service)
    try:
        async with AsyncClient(front.endpoints[0]) as client:
            with client.subscribe(pub, from_seq=0) as sub:
                await asyncio.sleep(0.3)
                await publish(sink, 5)
                before = await _collect(sub, 5)
                await sink.close()
                sink = StoreSequenceSink([pub], store=stores[1])  # a new log
                await start_bound(sink)
                service.sink = sink
                await publish(sink, 3, start=5)  # unheard
                await asyncio.sleep(0.5)
                await publish(sink, 2, start=8)
                after = await _collect(sub, 5)
        assert [e.seq for e in before] == [1, 2, 3, 4, 5]
        assert [e.seq for e in after] == [1, 2, 3, 4, 5]
        assert [e.data["n"] for e in before + after] == list(range(10))
        assert len({e.data["epoch"] for e in before + after}) == 2
    finally:
        await sink.close()
        await front.stop()
        for store in stores:
            await store.close()
