"""Event subscriber: an async iterator over the daemon's PUB stream with gap detection.

Gap rule (docs/wire.md, "Sequence and gaps"): subscribed to every topic, each event's
``seq`` must be the previous one + 1; subscribed to some topics, each topic's
``topic_seq`` must be that topic's previous + 1. A jump is reported on the event as
``gap``. A new ``src`` means the daemon restarted: counters start afresh, no gap. The
first event seen after connecting has nothing to compare with (ZeroMQ's slow joiner).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import msgpack
import zmq
import zmq.asyncio

from oexec.client.curve import CurveKeys
from oexec.models import Fill, Order
from oexec.wire import fill_from_wire, order_from_wire

if TYPE_CHECKING:
    from oexec.client.replay import StreamReplay


REMEMBERED_KEYS = 100_000


def event_key(topic: str, data: dict[str, Any]) -> tuple[str, ...] | None:
    """What makes an event unique: (topic, order id, order version) for order events,
    (topic, symbol, trade id) for fills; None for anything else."""
    if topic == "fill":
        fill = data.get("fill")
        if isinstance(fill, dict):
            return (topic, str(fill.get("symbol")), str(fill.get("trade_id")))
        return None
    order = data.get("order")
    if isinstance(order, dict):
        return (topic, str(order.get("id")), str(order.get("version")))
    return None


@attrs.frozen(slots=True)
class Gap:
    """Events ``first``..``last`` (by ``seq``, or by ``topic_seq`` of ``topic``) were missed."""

    first: int
    last: int
    topic: str | None = None  # None: counted by global seq

    @property
    def missed(self) -> int:
        return self.last - self.first + 1


@attrs.frozen(slots=True)
class Event:
    topic: str
    seq: int
    topic_seq: int
    ts: int
    src: str
    data: dict[str, Any]
    gap: Gap | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the event body (``seq``, ``topic``, ``order``, ...), dict-style."""
        return self.data.get(key, default)

    @property
    def order(self) -> Order | None:
        raw = self.data.get("order")
        return None if raw is None else order_from_wire(raw)

    @property
    def fill(self) -> Fill | None:
        raw = self.data.get("fill")
        return None if raw is None else fill_from_wire(raw)


class GapTracker:
    """Pure bookkeeping of the gap rule; the Subscriber feeds it every event."""

    def __init__(self, by_topic: bool) -> None:
        self.by_topic = by_topic
        self.src: str | None = None
        self.last_seq: int | None = None
        self.last_topic_seq: dict[str, int] = {}

    def observe(self, src: str, topic: str, seq: int, topic_seq: int) -> Gap | None:
        if src != self.src:
            self.src, self.last_seq = src, None
            self.last_topic_seq.clear()
        if self.by_topic:
            previous = self.last_topic_seq.get(topic)
            self.last_topic_seq[topic] = max(topic_seq, previous or 0)
            if previous is not None and topic_seq > previous + 1:
                return Gap(previous + 1, topic_seq - 1, topic)
            return None
        previous = self.last_seq
        self.last_seq = max(seq, previous or 0)
        if previous is not None and seq > previous + 1:
            return Gap(previous + 1, seq - 1)
        return None


def parse_event(frames: Sequence[bytes]) -> tuple[str, dict[str, Any]]:
    """``[topic, msgpack map]`` -> (topic, map). Raises ValueError when malformed."""
    if len(frames) != 2:
        raise ValueError(f"expected 2 frames, got {len(frames)}")
    data = msgpack.unpackb(frames[1], raw=False)
    if not isinstance(data, dict):
        raise ValueError("event body is not a map")
    for key in ("seq", "topic_seq", "ts"):
        if not isinstance(data.get(key), int):
            raise ValueError(f"event without integer {key}")
    return frames[0].decode(), data


class Subscriber:
    """``async for event in Subscriber("tcp://127.0.0.1:5556", ["order."]): ...``

    ``topics`` are ZeroMQ prefixes; empty (the default) means every topic.
    Malformed messages are skipped and counted in ``malformed``.

    With ``replay`` (a ``StreamReplay`` on the daemon's Redis Stream; every topic only)
    a gap is filled from the stream before the event that revealed it, and with
    ``from_seq`` too the events after it are replayed first: each event is delivered
    exactly once, in sequence (``gap`` is then set only for what the stream lost).
    """

    def __init__(
        self,
        endpoint: str,
        topics: Sequence[str] = (),
        *,
        context: zmq.asyncio.Context | None = None,
        replay: StreamReplay | None = None,
        from_seq: int | None = None,
        curve: CurveKeys | None = None,
        drop_repeats: bool = True,
    ) -> None:
        self._context = context or zmq.asyncio.Context.instance()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        every = not topics or "" in topics
        for topic in [""] if every else topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        if curve is not None:
            curve.apply(self._socket)
        self._socket.connect(endpoint)
        self._tracker = GapTracker(by_topic=not every)
        self.malformed = 0
        if replay is not None and not every:
            raise ValueError("replay needs every topic (the stream is one sequence)")
        self._replay = replay
        self._delivered: int | None = from_seq  # last seq handed out (replay mode)
        self._src: str | None = None
        self._pending: deque[Event] = deque()
        self._drop_repeats = drop_repeats
        self._seen: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._carried_gap: Gap | None = None
        self.repeats_dropped = 0

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        return await self.receive()

    async def receive(self) -> Event:
        """The next event; a redelivered repeat of one already delivered is skipped
        (its gap, if any, is reported on the next event)."""
        while True:
            event = await self._receive_any()
            if not self._drop_repeats:
                return event
            key = event_key(event.topic, event.data)
            if key is not None and key in self._seen and event.data.get("redelivered"):
                self.repeats_dropped += 1
                self._carried_gap = self._carried_gap or event.gap
                continue
            if key is not None:
                self._seen[key] = None
                if len(self._seen) > REMEMBERED_KEYS:
                    self._seen.popitem(last=False)
            if self._carried_gap is not None and event.gap is None:
                event = attrs.evolve(event, gap=self._carried_gap)
            self._carried_gap = None
            return event

    async def _receive_any(self) -> Event:
        while not self._pending:
            frames = await self._socket.recv_multipart()
            try:
                topic, data = parse_event(frames)
            except (ValueError, UnicodeDecodeError, msgpack.UnpackException):
                self.malformed += 1
                continue
            src = str(data.get("src", ""))
            seq, topic_seq = data["seq"], data["topic_seq"]
            if self._replay is not None:
                await self._with_replay(Event(topic, seq, topic_seq, data["ts"], src, data))
                continue
            gap = self._tracker.observe(src, topic, seq, topic_seq)
            return Event(topic, seq, topic_seq, data["ts"], src, data, gap)
        return self._pending.popleft()

    async def _with_replay(self, event: Event) -> None:
        """Queue what the stream has between the last delivered seq and ``event``, then it."""
        assert self._replay is not None
        if self._src is not None and event.src != self._src:
            self._delivered = None  # the sequence started again
        self._src = event.src
        last = self._delivered
        if last is not None and event.seq <= last:
            return  # already delivered from the stream
        if last is not None and event.seq > last + 1:
            expected = last + 1
            for missed in await self._replay.between(last, event.seq):
                gap = Gap(expected, missed.seq - 1) if missed.seq > expected else None
                self._pending.append(attrs.evolve(missed, gap=gap))
                expected = missed.seq + 1
            if event.seq > expected:
                event = attrs.evolve(event, gap=Gap(expected, event.seq - 1))
        self._pending.append(event)
        self._delivered = event.seq

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
