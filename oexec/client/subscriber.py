"""Event subscriber: an async iterator over the daemon's PUB stream that heals its gaps.

Gap rule (docs/wire.md, "Sequence and gaps"): ``seq`` is one sequence per event log
(``epoch``) and continues across daemon restarts; subscribed to every topic, each
event's ``seq`` must be the previous one + 1; subscribed to some topics, each topic's
``topic_seq`` must be that topic's previous + 1. A new ``epoch`` means the sequence
started again (the log was lost): counters start afresh. Events of a daemon without
an event log carry no ``epoch``: there a new ``src`` (run) starts counting afresh.

Healing (``replay=``, e.g. ``DaemonReplay``, the daemon's ``replay`` op): a jump, the
first event of a topic not seen since the last delivered one, and every (re)connect of
the PUB socket make the subscriber ask for the events after the last one it delivered;
it delivers them in order, then the live event, each once. Only what the log no longer
has is reported as ``gap``. Without ``replay=`` a jump is reported as ``gap`` on the
event that revealed it (ZeroMQ's slow joiner: the first event has nothing to compare
with).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any, Protocol

import attrs
import msgpack
import zmq
import zmq.asyncio

from oexec.client.curve import CurveKeys
from oexec.client.errors import ClientError
from oexec.models import Fill, Order
from oexec.wire import fill_from_wire, order_from_wire

log = logging.getLogger(__name__)
REMEMBERED_KEYS = 100_000


def event_key(topic: str, data: dict[str, Any]) -> tuple[str, ...] | None:
    """What makes an event unique: (topic, order id, order version) for order events,
    (topic, symbol, trade id) for fills, (topic, symbol, position side, venue event time)
    for positions, (topic, asset, venue event time) for balances; None for the rest."""
    if topic == "fill":
        fill = data.get("fill")
        if isinstance(fill, dict):
            return (topic, str(fill.get("symbol")), str(fill.get("trade_id")))
        return None
    position, balance = data.get("position"), data.get("balance")
    if isinstance(position, dict):
        return (
            topic,
            str(position.get("symbol")),
            str(position.get("position_side")),
            str(position.get("event_time")),
        )
    if isinstance(balance, dict):
        return (topic, str(balance.get("asset")), str(balance.get("event_time")))
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


class Replayer(Protocol):
    """A source of logged events: ``DaemonReplay`` (the ``replay`` op, either store) or
    ``StreamReplay`` (the Redis Stream)."""

    async def between(
        self, after: int, before: int | None, *, topics: Sequence[str] = ()
    ) -> list[Event]:
        """Events with ``after`` < seq < ``before`` (None: up to the newest), in order,
        whose topic starts with one of ``topics`` (all when empty). An event after a
        range the log no longer holds carries that range as its ``gap``."""
        ...


RETRY_MIN_S = 0.2
RETRY_MAX_S = 2.0
#: replay requests per gap before the gap is reported instead (each request itself
#: retries on timeout: AsyncClient's timeout_s x (retries + 1))
REPLAY_ATTEMPTS = 3


class Subscriber:
    """``async for event in Subscriber("tcp://127.0.0.1:5556", ["order."]): ...``

    ``topics`` are ZeroMQ prefixes; empty (the default) means every topic.
    Malformed messages are skipped and counted in ``malformed``.

    With ``replay`` (or ``daemon``, the request endpoint: a ``DaemonReplay`` on it) the
    subscriber heals (module doc): each event is delivered exactly once, in sequence;
    ``gap`` is set only for what the log lost. With ``from_seq`` too, every event after
    it is replayed first ("everything since SEQ"), then the live ones follow.
    """

    def __init__(
        self,
        endpoint: str,
        topics: Sequence[str] = (),
        *,
        context: zmq.asyncio.Context | None = None,
        replay: Replayer | None = None,
        daemon: str | None = None,
        from_seq: int | None = None,
        curve: CurveKeys | None = None,
        drop_repeats: bool = True,
    ) -> None:
        self._context = context or zmq.asyncio.Context.instance()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        every = not topics or "" in topics
        self._topics: tuple[str, ...] = () if every else tuple(topics)
        for topic in [""] if every else topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        if curve is not None:
            curve.apply(self._socket)
        if replay is None and daemon is not None:
            from oexec.client.replay import DaemonReplay  # replay.py builds on this module

            replay = DaemonReplay(daemon, context=self._context, curve=curve)
        self._replay = replay
        self._monitor: zmq.asyncio.Socket | None = None
        self._poller: zmq.asyncio.Poller | None = None
        if replay is not None:  # a (re)connect of the PUB socket triggers a catch-up
            self._monitor = self._socket.get_monitor_socket(zmq.EVENT_CONNECTED)
            self._poller = zmq.asyncio.Poller()
            self._poller.register(self._socket, zmq.POLLIN)
            self._poller.register(self._monitor, zmq.POLLIN)
        self._socket.connect(endpoint)
        self._tracker = GapTracker(by_topic=not every)
        self.malformed = 0
        self._delivered: int | None = from_seq  # last seq handed out (replay mode)
        self._catch_up = from_seq is not None
        self._epoch: str | None = None
        self._topic_seen: dict[str, int] = {}
        self._pending: deque[Event] = deque()
        self._drop_repeats = drop_repeats
        self._seen: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._carried_gap: Gap | None = None
        self.repeats_dropped = 0
        #: seqs of the latest dropped repeats: what explains a jump an application sees
        self.dropped_seqs: deque[int] = deque(maxlen=REMEMBERED_KEYS)
        self.replayed = 0  # events delivered from the log, not from PUB
        self.replay_failures = 0  # replay requests that failed (see _fill)
        self.already_delivered = 0  # PUB events skipped: the log had delivered them

    @property
    def last_seq(self) -> int | None:
        """The last seq delivered (replay mode): resume from it with ``from_seq``."""
        return self._delivered

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
                self.dropped_seqs.append(event.seq)
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
            if self._catch_up and self._replay is not None:
                self._catch_up = False
                if self._delivered is not None:
                    await self._fill(self._delivered, None)
                continue
            frames = await self._next_frames()
            if frames is None:
                continue
            try:
                topic, data = parse_event(frames)
            except (ValueError, UnicodeDecodeError, msgpack.UnpackException):
                self.malformed += 1
                continue
            src = str(data.get("src", ""))
            seq, topic_seq = data["seq"], data["topic_seq"]
            event = Event(topic, seq, topic_seq, data["ts"], src, data)
            if self._replay is not None:
                await self._with_replay(event)
                continue
            identity = str(data.get("epoch") or src)
            return attrs.evolve(event, gap=self._tracker.observe(identity, topic, seq, topic_seq))
        return self._pending.popleft()

    async def _next_frames(self) -> list[bytes] | None:
        """The next PUB message; None after a (re)connect was seen (catch-up flagged)."""
        if self._poller is None or self._monitor is None:
            return list(await self._socket.recv_multipart())
        ready = dict(await self._poller.poll())
        if self._monitor in ready:
            await self._monitor.recv_multipart()  # EVENT_CONNECTED: the only one asked for
            self._catch_up = True
            return None
        if self._socket in ready:
            return list(await self._socket.recv_multipart())
        return None

    async def _with_replay(self, event: Event) -> None:
        """Queue what the log has between the last delivered event and ``event``, then it."""
        epoch = str(event.data.get("epoch") or event.src)
        if self._epoch is not None and epoch != self._epoch:
            # the sequence started again: everything of the new log from its seq 1
            self._delivered = 0
            self._topic_seen.clear()
        self._epoch = epoch
        last = self._delivered
        if last is not None and event.seq <= last:
            self.already_delivered += 1
            return
        if last is not None and self._missed_before(event, last):
            await self._fill(last, event.seq)
        last = self._delivered
        if last is not None and event.seq <= last:
            self.already_delivered += 1
            return
        if not self._topics and last is not None and event.seq > last + 1:
            event = attrs.evolve(event, gap=Gap(last + 1, event.seq - 1))
        previous = self._topic_seen.get(event.topic)
        if self._topics and previous is not None and event.topic_seq > previous + 1:
            event = attrs.evolve(event, gap=Gap(previous + 1, event.topic_seq - 1, event.topic))
        self._deliver(event)

    def _missed_before(self, event: Event, last: int) -> bool:
        if not self._topics:
            return event.seq > last + 1
        previous = self._topic_seen.get(event.topic)
        return previous is None or event.topic_seq > previous + 1

    def _deliver(self, event: Event) -> None:
        self._pending.append(event)
        self._delivered = event.seq
        self._epoch = str(event.data.get("epoch") or event.src)  # replayed ones too
        self._topic_seen[event.topic] = event.topic_seq

    async def _fill(self, after: int, before: int | None) -> None:
        """Deliver the logged events after ``after`` (and before ``before``). A failed
        request is retried (live events wait in the socket) up to REPLAY_ATTEMPTS times,
        or not at all when the daemon keeps no log; then what it could not fetch is
        reported as ``gap`` on the next event, never skipped silently."""
        assert self._replay is not None
        delay = RETRY_MIN_S
        missed: list[Event] | None = None
        for attempt in range(1, REPLAY_ATTEMPTS + 1):
            try:
                missed = await self._replay.between(after, before, topics=self._topics)
                break
            except ClientError as exc:
                self.replay_failures += 1
                if attempt == REPLAY_ATTEMPTS or exc.code == "REPLAY_UNAVAILABLE":
                    log.error("replay after seq %d failed (%s); reporting a gap", after, exc)
                    return
                log.warning("replay after seq %d failed (%s); retrying", after, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        if missed is None:
            return
        epoch = str(getattr(self._replay, "epoch", "") or "")
        if after > 0 and epoch and self._epoch is not None and epoch != self._epoch:
            # the log was replaced since the last delivered event (found on a catch-up,
            # before any live event of the new log): start again from its seq 1
            self._delivered, self._epoch = 0, epoch
            self._topic_seen.clear()
            await self._fill(0, before)
            return
        expected = after + 1
        for event in missed:
            if event.seq < expected:
                continue
            if not self._topics and event.gap is None and event.seq > expected:
                event = attrs.evolve(event, gap=Gap(expected, event.seq - 1))
            self._deliver(event)
            self.replayed += 1
            expected = event.seq + 1

    def close(self) -> None:
        if self._monitor is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        self._socket.close(linger=0)
        closer = getattr(self._replay, "close_now", None)
        if closer is not None:
            closer()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
