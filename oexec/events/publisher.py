"""ZeroMQ PUB event sink with per-daemon sequence numbers (docs/wire.md, "Events").

Every event is a two-frame message ``[topic, msgpack map]``. The map carries ``v``,
``seq`` (per daemon, +1 per event, from 1 — or from the mirror stream's last seq + 1),
``topic_seq`` (+1 per event of that topic), ``topic``, ``ts`` (ms), ``src`` (this
run's id: a new ``src`` means a restart, sequences may start again) and the body.
PUB never blocks: a slow subscriber loses events and sees the gap by ``seq``.

Cost per event (issue 10). The outbox packs a change's payload once (``PackedPayload``);
the event map is those bytes spliced with the packed envelope fields under one map
header, byte for byte what packing ``{**payload, **envelope}`` gives. Events are sent
by a direct non-blocking send on each plain (not asyncio) PUB socket, not pyzmq's awaited
send (a future and a flags enum per event): PUB has no receive to wake and drops at the
high-water mark instead of blocking, so nothing is lost by not awaiting. The two frames
go to pyzmq's backend send (``front/zmqraw.py``: no ``send_multipart`` sugar, ≈ 2.5 µs
per event less) and each topic's bytes are encoded once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
import zmq
import zmq.asyncio

from oexec.config import FrontConfig
from oexec.events.mirror import StreamMirror
from oexec.front.curve import CurveHandle, enable_curve
from oexec.front.zmqraw import MORE, NOBLOCK, send_frame
from oexec.service.outbox import PackedPayload
from oexec.wire import WIRE_VERSION, pack

log = logging.getLogger(__name__)

LINGER_MS = 1000
SNDHWM = 100_000
MAX_TOPICS_CACHED = 64  # topics are a fixed set (docs/wire.md §6); a bound all the same


def _map_header(count: int) -> bytes:
    if count < 16:
        return bytes((0x80 | count,))
    if count < 0x10000:
        return b"\xde" + count.to_bytes(2, "big")
    return b"\xdf" + count.to_bytes(4, "big")


def _map_size(packed: bytes) -> tuple[int, int]:
    """(entries, header bytes) of a packed msgpack map."""
    first = packed[0]
    if first & 0xF0 == 0x80:
        return first & 0x0F, 1
    if first == 0xDE:
        return int.from_bytes(packed[1:3], "big"), 3
    if first == 0xDF:
        return int.from_bytes(packed[1:5], "big"), 5
    raise ValueError("not a msgpack map")


def merge_packed_maps(first: bytes, second: bytes) -> bytes:
    """One packed map with ``first``'s entries, then ``second``'s (keys must differ)."""
    n1, h1 = _map_size(first)
    n2, h2 = _map_size(second)
    return b"".join((_map_header(n1 + n2), first[h1:], second[h2:]))


def pack_event(payload: dict[str, Any], envelope: dict[str, Any]) -> bytes:
    """msgpack of ``{**payload, **envelope}``, reusing a PackedPayload's bytes."""
    if isinstance(payload, PackedPayload) and payload.keys().isdisjoint(envelope):
        return merge_packed_maps(payload.packed, pack(envelope))
    return pack({**payload, **envelope})


class ZmqEventSink:
    """Implements the EventSink port. ``await start()`` before publishing."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        redis: aioredis.Redis | None = None,
        stream_key: str | None = None,
        maxlen: int = 1_000_000,
        buffer_size: int = 10_000,
        flush_timeout_s: float = 5.0,
        context: zmq.asyncio.Context | None = None,
        curve: FrontConfig | None = None,
    ) -> None:
        self._endpoint_specs = tuple(endpoints)
        self._curve = curve  # the front end's CURVE keys and allow-list guard PUB too
        self._curve_handles: list[CurveHandle | None] = []
        self._context = context or zmq.asyncio.Context.instance()
        self._sockets: list[zmq.Socket[bytes]] = []
        self._topic_frames: dict[str, bytes] = {}  # topic -> its first frame
        self._endpoints: list[str] = []
        self._mirror = (
            StreamMirror(redis, stream_key, maxlen=maxlen, buffer_size=buffer_size)
            if redis is not None and stream_key
            else None
        )
        self._flush_timeout_s = flush_timeout_s
        self._seq = 0
        self._topic_seq: Counter[str] = Counter()
        self.src = uuid.uuid4().hex[:16]
        #: Called with (seq, topic, packed event) after each send (e.g. the NATS mirror).
        self.taps: list[Callable[[int, str, bytes], None]] = []

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(self._endpoints)

    @property
    def mirror(self) -> StreamMirror | None:
        return self._mirror

    @property
    def last_seq(self) -> int:
        return self._seq

    async def start(self) -> None:
        if self._mirror is not None:
            self._seq = await self._mirror.last_seq()
        for spec in self._endpoint_specs:
            sock: zmq.Socket[bytes] = zmq.Socket(self._context, zmq.PUB)
            sock.setsockopt(zmq.SNDHWM, SNDHWM)
            sock.setsockopt(zmq.LINGER, LINGER_MS)
            self._sockets.append(sock)
            if self._curve is not None:
                self._curve_handles.append(await enable_curve(self._context, sock, self._curve))
            sock.bind(spec)
            self._endpoints.append(sock.getsockopt_string(zmq.LAST_ENDPOINT))
        if self._mirror is not None:
            self._mirror.start()
        log.info("event publisher bound", extra={"endpoints": self._endpoints, "seq": self._seq})

    async def publish(self, topic: str, payload: dict[str, Any]) -> int:
        """Announce one event; returns its ``seq``. Never waits on subscribers or Redis."""
        self._seq += 1
        seq = self._seq
        self._topic_seq[topic] += 1
        envelope = {
            "v": WIRE_VERSION,
            "seq": seq,
            "topic_seq": self._topic_seq[topic],
            "topic": topic,
            "ts": time.time_ns() // 1_000_000,
            "src": self.src,
        }
        data = pack_event(payload, envelope)
        self._put(topic, seq, data)
        if self._mirror is not None:
            self._mirror.offer(seq, topic, data)
        return seq

    async def replay(self, from_seq: int, topics: Sequence[str], limit: int) -> dict[str, Any]:
        """The ``replay`` op: this sink keeps no log (LoggedSequenceSink does)."""
        from oexec.events.logged import no_event_log  # logged.py builds on this module

        raise no_event_log()

    async def flush(self) -> None:
        """PUB sends at once; wait only for the Redis Stream mirror to write what it was
        given. (The NATS mirror is a copy of the stream, not waited for.)"""
        if self._mirror is not None:
            await self._mirror.watermark.wait()

    async def send(self, topic: str, event: dict[str, Any]) -> bytes:
        """Put one finished event (``seq`` assigned) on every PUB socket and every tap;
        returns its packed bytes. Never blocks."""
        data = pack(event)
        self._put(topic, int(event["seq"]), data)
        return data

    def _put(self, topic: str, seq: int, data: bytes) -> None:
        """Send one packed event on every PUB socket and to every tap."""
        name = self._topic_frames.get(topic)
        if name is None:
            name = topic.encode()
            if len(self._topic_frames) < MAX_TOPICS_CACHED:
                self._topic_frames[topic] = name
        for sock in self._sockets:
            try:
                send_frame(sock, name, MORE)  # libzmq takes a message whole or refuses
                send_frame(sock, data, NOBLOCK)  # its first frame: this one cannot fail
            except zmq.Again:
                log.warning("event dropped at PUB high-water mark", extra={"seq": seq})
        for tap in self.taps:
            tap(seq, topic, data)

    async def close(self) -> None:
        if self._mirror is not None:
            await self._mirror.close(self._flush_timeout_s)
        for sock in self._sockets:
            sock.close(linger=LINGER_MS)
        self._sockets.clear()
        for handle in self._curve_handles:
            if handle is not None:
                handle.stop()
        self._curve_handles.clear()
