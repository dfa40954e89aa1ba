"""Event sink over real PUB/SUB sockets, topics, sequence numbers and gap detection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import msgpack
import pytest
import zmq
import zmq.asyncio

from oexec.client import Event, Gap, Subscriber
from oexec.client.subscriber import GapTracker, parse_event
from oexec.events import ZmqEventSink
from oexec.models import Fill, Order, OrderState, OrderType, Side
from oexec.service.outbox import fill_events, order_events
from oexec.service.ports import EventSink, EventTopics

RECV_TIMEOUT_S = 5


def make_order(state: OrderState = OrderState.NEW, version: int = 1) -> Order:
    return Order(
        id="o1",
        request_id="r1",
        client_order_id="x-r1",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        state=state,
        created_at=1,
        updated_at=2,
        price=Decimal("50000"),
        version=version,
    )


FILL = Fill(
    order_id="o1",
    exchange_order_id="9",
    client_order_id="x-r1",
    symbol="BTCUSDT",
    side=Side.BUY,
    trade_id=77,
    price=Decimal("50000.0"),
    quantity=Decimal("0.004"),
    commission=Decimal("0.01"),
    commission_asset="USDT",
    is_maker=False,
    realized_pnl=Decimal("0"),
    time=3,
)


@pytest.mark.parametrize(
    ("previous", "state", "topics"),
    [
        (None, OrderState.SUBMITTING, []),  # a claim: announced by the venue's answer
        (None, OrderState.REJECTED, [EventTopics.ORDER_REJECTED]),
        (OrderState.SUBMITTING, OrderState.NEW, [EventTopics.ORDER_CREATED]),
        (OrderState.SUBMITTING, OrderState.FILLED,
         [EventTopics.ORDER_CREATED, EventTopics.ORDER_FILLED]),
        (OrderState.SUBMITTING, OrderState.UNKNOWN, [EventTopics.ORDER_UPDATED]),
        (OrderState.UNKNOWN, OrderState.NEW, [EventTopics.ORDER_CREATED]),
        (OrderState.NEW, OrderState.PARTIALLY_FILLED, [EventTopics.ORDER_UPDATED]),
        (OrderState.NEW, OrderState.FILLED, [EventTopics.ORDER_FILLED]),
        (OrderState.NEW, OrderState.CANCELED, [EventTopics.ORDER_CANCELED]),
        (OrderState.NEW, OrderState.EXPIRED, [EventTopics.ORDER_CANCELED]),
        (OrderState.SUBMITTING, OrderState.REJECTED, [EventTopics.ORDER_REJECTED]),
    ],
)  # fmt: skip
def test_topics_follow_the_daemons_one_rule(
    previous: OrderState | None, state: OrderState, topics: list[str]
) -> None:
    before = None if previous is None else make_order(previous, 1)
    assert [t for t, _ in order_events(before, make_order(state, 2))] == topics


def _order_event(state: OrderState, previous: OrderState) -> tuple[str, dict[str, object]]:
    """The last event the daemon announces for previous -> state."""
    return order_events(make_order(previous), make_order(state))[-1]


def test_event_bodies() -> None:
    [(topic, body)] = order_events(
        make_order(OrderState.NEW, 3), make_order(OrderState.PARTIALLY_FILLED, 4)
    )
    assert topic == "order.updated" and body["previous_state"] == "NEW"
    assert body["order"]["version"] == 4 and body["order"]["quantity"] == "0.010"
    [(topic, body)] = fill_events(FILL)
    assert topic == "fill" and body["fill"]["trade_id"] == 77 and body["fill"]["price"] == "50000.0"


@pytest.fixture
async def sink() -> AsyncIterator[ZmqEventSink]:
    s = ZmqEventSink(["tcp://127.0.0.1:*"])
    await s.start()
    yield s
    await s.close()


async def warm_up(sink: ZmqEventSink, sub: Subscriber, topic: str = "fill") -> Event:
    """Publish probes until the subscription is live (ZeroMQ slow joiner)."""
    while True:
        await sink.publish(topic, {"probe": True})
        try:
            return await asyncio.wait_for(sub.receive(), 0.05)
        except TimeoutError:
            continue


async def test_sink_implements_port(sink: ZmqEventSink) -> None:
    port: EventSink = sink
    assert await port.publish("fill", {}) == 1
    assert await port.publish("fill", {}) == 2
    assert sink.last_seq == 2


async def test_sequence_topics_and_payload(sink: ZmqEventSink) -> None:
    with Subscriber(sink.endpoints[0]) as sub:
        first = await warm_up(sink, sub)
        published = []
        for state in (OrderState.NEW, OrderState.PARTIALLY_FILLED, OrderState.FILLED):
            published.append(await sink.publish(*_order_event(state, OrderState.NEW)))
        published.append(await sink.publish(*fill_events(FILL)[0]))
        events = [await asyncio.wait_for(sub.receive(), RECV_TIMEOUT_S) for _ in published]
    assert [e.seq for e in events] == published == list(range(first.seq + 1, first.seq + 5))
    assert all(e.gap is None for e in events)
    assert [e.topic for e in events] == ["order.updated", "order.updated", "order.filled", "fill"]
    assert events[0].order == make_order(OrderState.NEW)
    assert events[2].data["order"]["version"] == 1
    assert events[3].fill == FILL and events[3].order is None
    assert events[0].src == sink.src and events[0].data["v"] == 1
    assert events[0].ts > 0
    assert events[0].get("seq") == events[0].seq and events[0].get("missing", 5) == 5


async def test_topic_filter_and_topic_seq(sink: ZmqEventSink) -> None:
    with Subscriber(sink.endpoints[0], ["fill"]) as sub:
        first = await warm_up(sink, sub, "fill")
        await sink.publish(*_order_event(OrderState.CANCELED, OrderState.NEW))
        await sink.publish(*fill_events(FILL)[0])
        await sink.publish(*_order_event(OrderState.CANCELED, OrderState.NEW))
        await sink.publish(*fill_events(FILL)[0])
        a = await asyncio.wait_for(sub.receive(), RECV_TIMEOUT_S)
        b = await asyncio.wait_for(sub.receive(), RECV_TIMEOUT_S)
    assert (a.topic, b.topic) == ("fill", "fill")
    assert (a.topic_seq, b.topic_seq) == (first.topic_seq + 1, first.topic_seq + 2)
    assert b.seq == a.seq + 2  # global seq jumps over the order event: not a gap here
    assert a.gap is None and b.gap is None


async def test_subscriber_reports_gap_and_restart() -> None:
    ctx = zmq.asyncio.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    pub.setsockopt(zmq.LINGER, 0)

    async def send(seq: int, src: str = "a", topic: str = "fill", topic_seq: int = 0) -> None:
        body = {"seq": seq, "topic_seq": topic_seq or seq, "ts": 1, "src": src, "topic": topic}
        await pub.send_multipart([topic.encode(), msgpack.packb(body)])

    try:
        with Subscriber(f"tcp://127.0.0.1:{port}") as sub:
            while True:  # slow joiner: seq 1 until one arrives
                await send(1)
                try:
                    await asyncio.wait_for(sub.receive(), 0.05)
                    break
                except TimeoutError:
                    continue
            await pub.send_multipart([b"fill", b"\xc1"])  # malformed: skipped
            await pub.send_multipart([b"fill"])
            for seq in (2, 5, 6):
                await send(seq)
            await send(1, src="b")  # daemon restarted
            await send(3, src="b")
            got = [await asyncio.wait_for(sub.receive(), RECV_TIMEOUT_S) for _ in range(5)]
            assert sub.malformed == 2
    finally:
        pub.close(linger=0)
    assert [e.gap for e in got] == [None, Gap(3, 4), None, None, Gap(2, 2)]
    assert got[1].gap is not None and got[1].gap.missed == 2


async def test_subscriber_drops_redelivered_repeats_only() -> None:
    ctx = zmq.asyncio.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    pub.setsockopt(zmq.LINGER, 0)

    async def send(seq: int, trade_id: int, src: str = "a", **extra: object) -> None:
        body = {
            "seq": seq, "topic_seq": seq, "ts": 1, "src": src, "topic": "fill",
            "fill": {"symbol": "BTCUSDT", "trade_id": trade_id}, **extra,
        }  # fmt: skip
        await pub.send_multipart([b"fill", msgpack.packb(body)])

    try:
        with Subscriber(f"tcp://127.0.0.1:{port}") as sub:
            while True:  # slow joiner
                await send(1, 1)
                try:
                    await asyncio.wait_for(sub.receive(), 0.05)
                    break
                except TimeoutError:
                    continue
            with contextlib.suppress(TimeoutError):  # a late probe: not a redelivery
                while True:
                    await asyncio.wait_for(sub.receive(), 0.1)
            await send(1, 1, src="b", redelivered=True)  # restarted: a repeat of trade 1
            await send(2, 2, src="b", redelivered=True)  # never delivered before: kept
            await send(4, 1, src="b", redelivered=True)  # a repeat hiding a gap (seq 3)
            await send(5, 3, src="b")
            got = [await asyncio.wait_for(sub.receive(), RECV_TIMEOUT_S) for _ in range(2)]
    finally:
        pub.close(linger=0)
    assert [e.data["fill"]["trade_id"] for e in got] == [2, 3]
    assert sub.repeats_dropped == 2
    assert got[1].gap == Gap(3, 3)  # reported on the next delivered event


def test_gap_tracker_by_topic() -> None:
    tracker = GapTracker(by_topic=True)
    assert tracker.observe("s", "fill", 10, 1) is None
    assert tracker.observe("s", "order.created", 11, 1) is None
    assert tracker.observe("s", "fill", 15, 2) is None
    assert tracker.observe("s", "fill", 20, 5) == Gap(3, 4, "fill")
    assert tracker.observe("s", "fill", 21, 4) is None  # late duplicate: no gap, no rewind
    assert tracker.observe("s", "fill", 22, 6) is None


@pytest.mark.parametrize(
    "frames",
    [
        [b"fill"],
        [b"fill", msgpack.packb([1])],
        [b"fill", msgpack.packb({"seq": "1", "topic_seq": 1, "ts": 1})],
    ],
)
def test_parse_event_rejects(frames: list[bytes]) -> None:
    with pytest.raises(ValueError):
        parse_event(frames)


async def test_multiple_endpoints_and_bind_failure() -> None:
    sink = ZmqEventSink(["tcp://127.0.0.1:*", "tcp://127.0.0.1:*"])
    await sink.start()
    try:
        assert len(sink.endpoints) == 2 and sink.endpoints[0] != sink.endpoints[1]
        with Subscriber(sink.endpoints[1]) as sub:
            event = await warm_up(sink, sub)
            assert event.topic == "fill"
    finally:
        await sink.close()
    bad = ZmqEventSink(["nope://x"])
    with pytest.raises(zmq.ZMQError):
        await bad.start()
    await bad.close()


def test_event_is_frozen() -> None:
    event = Event("fill", 1, 1, 1, "s", {})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.seq = 2  # type: ignore[misc]
