"""Events that survive a crash: the transactional outbox (docs/tracking.md).

Why. A daemon that stores a change and then dies before publishing it would never
announce it: after a restart the store already holds the new state, so nothing looks
changed. So every store write that implies events (an order's state change, a new fill)
stores those events in the same atomic step (``OrderStore.save(events=...)``,
``add_fill(events=...)``). The writer publishes them right after the write, as before
(no extra round trip on the order path); this relay acknowledges them in batches once
the sink reports them out (``EventSink.flush``). Entries still pending after
``redeliver_after_s`` — their writer died between write and publish, or its
acknowledgement was lost — are taken from the store and published again with
``redelivered: true``.

The guarantee is at-least-once: an event published just before a crash, whose
acknowledgement had not landed, is published a second time, flagged. Subscribers drop
such a repeat by its key (order id + version + topic, or symbol + trade id;
``oexec.client.subscriber.event_key``); ``oexec.client.Subscriber`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgpack

from oexec.errors import OexecError
from oexec.models import Fill, Order, OrderState
from oexec.models.serde import fill_to_dict, order_to_dict
from oexec.service.apply import event_topics
from oexec.service.ports import EventSink, EventTopics, OrderStore

log = logging.getLogger("oexec.outbox")

Event = tuple[str, dict[str, Any]]


ACK_INTERVAL_S = 0.05
REDELIVER_AFTER_S = 5.0
TAKE_BATCH = 500
REDELIVERED = "redelivered"
_PACKER = msgpack.Packer()  # the loop's thread only; packb's options (use_bin_type)


class PackedPayload(dict[str, Any]):
    """An event payload together with its msgpack bytes, packed once.

    Why. A change's payload is stored in the outbox entry and then put on the wire inside
    every event of that change; packing it once lets both reuse the bytes (the sink
    splices them into the event map, oexec/events/publisher.py). Still a plain ``dict``
    for every other reader. Do not mutate one: ``packed`` would no longer match.
    """

    __slots__ = ("packed",)

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload)
        self.packed: bytes = _PACKER.pack(payload)


def order_events(
    before: Order | None, after: Order, body: dict[str, Any] | None = None
) -> list[Event]:
    """The events a stored order change announces (order.filled exactly once: on the
    change that reaches FILLED). A new order is announced only when it is rejected at
    once; the first venue answer announces ``order.created``. ``body``: ``after`` as a
    dict, when the caller has it already."""
    if before is None:
        topics = [EventTopics.ORDER_REJECTED] if after.state is OrderState.REJECTED else []
    else:
        topics = event_topics(before.state, after.state)
    if not topics:
        return []
    payload: dict[str, Any] = {"order": body if body is not None else order_to_dict(after)}
    if before is not None:
        payload["previous_state"] = before.state.value
    packed = PackedPayload(payload)  # the events of one change share it
    return [(topic, packed) for topic in topics]


def fill_events(fill: Fill) -> list[Event]:
    return [(EventTopics.FILL, PackedPayload({"fill": fill_to_dict(fill)}))]


_PAIR = b"\x92"  # msgpack fixarray header of [topic, payload]


def pack_events(events: Sequence[Event]) -> bytes:
    """msgpack of ``[[topic, payload], ...]``; a PackedPayload's bytes are used as they are."""
    parts = [_PACKER.pack_array_header(len(events))]
    for topic, payload in events:
        body = payload.packed if isinstance(payload, PackedPayload) else _PACKER.pack(payload)
        parts += (_PAIR, _PACKER.pack(topic), body)
    return b"".join(parts)


def unpack_events(body: bytes) -> list[Event]:
    items = msgpack.unpackb(body, raw=False)
    return [(str(topic), dict(payload)) for topic, payload in items]


class OutboxRelay:
    """Publishes stored events, acknowledges them, and redelivers the forgotten ones."""

    def __init__(
        self,
        store: OrderStore,
        sink: EventSink,
        *,
        ack_interval_s: float = ACK_INTERVAL_S,
        redeliver_after_s: float = REDELIVER_AFTER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sink = sink
        self.ack_interval_s = ack_interval_s
        self.redeliver_after_s = redeliver_after_s
        self.clock = clock
        #: entry ids published by this process and not yet acknowledged
        self._unacked: dict[str, None] = {}
        self.redelivered = 0
        self.acked = 0

    async def publish(self, entry_id: str | None, events: Sequence[Event]) -> None:
        """Put a stored change's events on the sink; acknowledge the entry later."""
        for topic, payload in events:
            await self.sink.publish(topic, payload)
        if entry_id is not None:
            self._unacked[entry_id] = None

    async def flush(self) -> int:
        """Acknowledge every entry published so far once the sink has them out."""
        if not self._unacked:
            return 0
        ids = list(self._unacked)
        await self.sink.flush()
        await self.store.outbox_ack(ids)
        for entry_id in ids:
            self._unacked.pop(entry_id, None)
        self.acked += len(ids)
        return len(ids)

    async def redeliver(
        self,
        *,
        older_than_s: float | None = None,
        before_publish: Callable[[], Awaitable[None]] | None = None,
    ) -> int:
        """Publish again the entries pending longer than the grace period; returns how many.

        ``before_publish`` is awaited once, only if there is something to publish (at
        start: give subscribers time to reconnect to the new PUB socket first).
        """
        grace = self.redeliver_after_s if older_than_s is None else older_than_s
        cutoff_ms = int((self.clock() - grace) * 1000)
        count = 0
        while True:
            entries = await self.store.outbox_take(cutoff_ms, TAKE_BATCH)
            if entries and before_publish is not None:
                await before_publish()
                before_publish = None
            for entry in entries:
                if entry.id in self._unacked:
                    continue  # ours, out already, its acknowledgement not yet landed
                try:
                    events = unpack_events(entry.body)
                except (ValueError, TypeError, msgpack.UnpackException):
                    log.error("outbox entry %s is unreadable; dropped", entry.id)
                    await self.store.outbox_ack([entry.id])
                    continue
                await self.publish(
                    entry.id, [(topic, {**body, REDELIVERED: True}) for topic, body in events]
                )
                count += 1
            if len(entries) < TAKE_BATCH:
                break
        if count:
            self.redelivered += count
            log.warning("redelivered %d outbox entries", count)
        return count

    async def run(self) -> None:
        """Acknowledge every ``ack_interval_s``; redeliver stale entries every grace period."""
        next_redelivery = time.monotonic()
        while True:
            await asyncio.sleep(self.ack_interval_s)
            try:
                await self.flush()
                if time.monotonic() >= next_redelivery:
                    next_redelivery = time.monotonic() + self.redeliver_after_s / 2
                    await self.redeliver()
            except OexecError as exc:  # store away: the entries wait, nothing is lost
                log.warning("outbox relay: %s", exc.message)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Final acknowledgement (best effort: what is not acknowledged is redelivered)."""
        with contextlib.suppress(OexecError, TimeoutError):
            await asyncio.wait_for(self.flush(), timeout_s)
