"""An event sink that logs every event before it publishes it: one sequence, and replay.

Why (issue 17). A subscriber must be able to know exactly which events it missed and
ask for them again, across restarts of the daemon and on either store. So the sequence
lives in the store, not in memory: each event is appended to the store's event log
(which assigns ``seq`` and ``topic_seq``, continuing where the last run stopped), and
only then put on PUB with those numbers. The log keeps the events for the retention
window (``[events] retention_s`` and a size bound) and answers the ``replay`` op.

Off the order path: ``publish`` queues the event and returns 0 (its sequence is not
known yet); one task appends batches (one store call each) and sends them on PUB in
sequence order. When the store is down the batch waits and retries with back-off
(nothing of a failed append is kept, so a retry cannot number an event twice); when
the queue is full an event is dropped (counted, logged) rather than blocking orders.

The envelope gains ``epoch``: the log's id. ``seq`` continues across restarts within an
epoch; a new ``epoch`` (the log was lost and started again) means "counting restarted".
``src`` names this run of this daemon, as before.

Subclasses say how to open, append to, read and trim the log: SharedSequenceSink
(Redis: one sequence for every daemon on it, oexec/events/sequence.py) and
StoreSequenceSink (SQLite, oexec/events/store_log.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import msgpack

from oexec.config import FrontConfig
from oexec.errors import ErrorCode, OexecError, ReplayExpiredError
from oexec.events.mirror import Watermark
from oexec.events.publisher import ZmqEventSink, merge_packed_maps, pack_event
from oexec.tasks import cancel_and_wait
from oexec.wire import WIRE_VERSION, pack

log = logging.getLogger(__name__)

BATCH = 256
MAX_BACKOFF_S = 1.0
TRIM_INTERVAL_S = 60.0
DEFAULT_RETENTION_S = 86_400.0
DEFAULT_RETENTION_EVENTS = 1_000_000
MAX_REPLAY_LIMIT = 1000

#: (local number, topic, packed event without seq/topic_seq, the event as a dict only
#: when its payload has a seq or topic_seq key of its own)
_Queued = tuple[int, str, bytes, dict[str, Any] | None]
_NUMBERS = frozenset(("seq", "topic_seq"))
#: A logged event as read back: (seq, topic, topic_seq, packed event without the numbers)
LogRow = tuple[int, str, int, bytes]


def event_from_row(row: LogRow) -> dict[str, Any]:
    """The event map of a log row, numbers included."""
    seq, topic, topic_seq, data = row
    event = msgpack.unpackb(data, raw=False)
    if not isinstance(event, dict):
        raise ValueError("logged event is not a map")
    event["seq"], event["topic_seq"] = seq, topic_seq
    event.setdefault("topic", topic)
    return event


def replay_page(
    rows: Sequence[LogRow],
    *,
    from_seq: int,
    topics: Sequence[str],
    limit: int,
    trimmed_through: int,
    last_seq: int,
    epoch: str = "",
) -> dict[str, Any]:
    """The ``replay`` op's result for one page read from a log (pure; docs/wire.md).

    ``events``: the events with seq >= ``from_seq`` among the next ``limit`` logged ones
    whose topic starts with one of ``topics`` (all when empty); ``next_seq``: where the
    next page starts; ``last_seq``: the newest seq when read; ``oldest_seq``: the oldest
    still kept; ``epoch``: the log's id (a subscriber that knew another one starts again
    from seq 1). Raises ReplayExpiredError when ``from_seq`` is at or below what the
    retention has already trimmed (0 means "from the oldest kept": never an error).
    """
    if 0 < from_seq <= trimmed_through:
        raise ReplayExpiredError(
            f"events from seq {from_seq} are older than the retention window; the oldest "
            f"kept is seq {trimmed_through + 1}",
            details={"from_seq": from_seq, "oldest_seq": trimmed_through + 1},
        )
    prefixes = tuple(t for t in topics if t)
    events = [event_from_row(row) for row in rows if not prefixes or row[1].startswith(prefixes)]
    if len(rows) >= limit:
        next_seq = rows[-1][0] + 1
    else:
        next_seq = max(last_seq + 1, max(from_seq, trimmed_through + 1))
    return {
        "events": events,
        "next_seq": next_seq,
        "last_seq": last_seq,
        "oldest_seq": trimmed_through + 1,
        "epoch": epoch,
    }


class LoggedSequenceSink(ZmqEventSink):
    """EventSink whose sequence and copies live in a log; see the module doc."""

    #: exceptions meaning "the log is unreachable now": the append is retried
    TRANSIENT: tuple[type[BaseException], ...] = (OexecError, OSError, TimeoutError)

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        retention_events: int = DEFAULT_RETENTION_EVENTS,
        buffer_size: int = 10_000,
        flush_timeout_s: float = 5.0,
        curve: FrontConfig | None = None,
    ) -> None:
        super().__init__(endpoints, flush_timeout_s=flush_timeout_s, curve=curve)
        self.retention_s = retention_s
        self.retention_events = retention_events
        self.epoch = ""
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue(buffer_size)
        self._local_no = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.appended = 0
        self._watermark = Watermark()

    # -- what a log provides ------------------------------------------------------------
    async def _open_log(self) -> tuple[int, str]:
        """(last assigned seq, epoch)."""
        raise NotImplementedError

    async def _append_once(self, batch: Sequence[tuple[int, str, bytes]]) -> list[tuple[int, int]]:
        """Append (local number, topic, packed event); (seq, topic_seq) per event."""
        raise NotImplementedError

    async def _read_log(self, from_seq: int, limit: int) -> tuple[list[LogRow], int, int]:
        """(up to ``limit`` rows with seq >= from_seq, trimmed_through, last seq)."""
        raise NotImplementedError

    async def _trim_log(self, older_than_ms: int, max_events: int) -> int:
        raise NotImplementedError

    # -- the sink -----------------------------------------------------------------------
    async def start(self) -> None:
        self._seq, self.epoch = await self._open_log()
        await super().start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name="event-sequence"),
            loop.create_task(self._trim_forever(), name="event-retention"),
        ]

    async def replay(self, from_seq: int, topics: Sequence[str], limit: int) -> dict[str, Any]:
        """One page of logged events from ``from_seq`` on (see ``replay_page``)."""
        limit = max(1, min(limit, MAX_REPLAY_LIMIT))
        rows, trimmed, last = await self._read_log(max(from_seq, 1), limit)
        return replay_page(
            rows,
            from_seq=from_seq,
            topics=topics,
            limit=limit,
            trimmed_through=trimmed,
            last_seq=last,
            epoch=self.epoch,
        )

    def envelope(self, topic: str, ts_ms: int | None = None) -> dict[str, Any]:
        """The fields every logged event carries besides its payload and its numbers
        (``ts_ms``: the event's time, now if not given)."""
        return {
            "v": WIRE_VERSION,
            "topic": topic,
            "ts": time.time_ns() // 1_000_000 if ts_ms is None else ts_ms,
            "src": self.src,
            "epoch": self.epoch,
        }

    async def publish(self, topic: str, payload: dict[str, Any]) -> int:
        """Queue the event; returns 0: the sequence is assigned when it is logged."""
        self._local_no += 1
        envelope = self.envelope(topic)
        data = pack_event(payload, envelope)
        plain = None if _NUMBERS.isdisjoint(payload) else {**payload, **envelope}
        try:
            self._queue.put_nowait((self._local_no, topic, data, plain))
            self._watermark.mark_put()
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("event log queue full; event dropped", extra={"topic": topic})
        return 0

    async def flush(self) -> None:
        """Wait until every event published so far is logged and on PUB."""
        await self._watermark.wait()

    async def close(self) -> None:
        if self._tasks:
            try:
                await asyncio.wait_for(self._queue.join(), self._flush_timeout_s)
            except TimeoutError:
                self.dropped += self._queue.qsize()
                log.error("event log not flushed", extra={"left": self._queue.qsize()})
            await cancel_and_wait(self._tasks)
            self._tasks = []
        await super().close()

    async def trim(self) -> int:
        """Drop what is past the retention window or the size bound now."""
        cutoff_ms = int((time.time() - self.retention_s) * 1000)
        return await self._trim_log(cutoff_ms, self.retention_events)

    async def _trim_forever(self) -> None:
        while True:
            try:
                gone = await self.trim()
                if gone:
                    log.info("event log trimmed", extra={"events": gone})
            except self.TRANSIENT as exc:
                log.warning("event log trim failed: %r", exc)
            await asyncio.sleep(TRIM_INTERVAL_S)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            numbers = await self._append_until_done([item[:3] for item in batch])
            for (_, topic, data, plain), (seq, topic_seq) in zip(batch, numbers, strict=True):
                self._seq = max(self._seq, seq)
                numbers_map = {"seq": seq, "topic_seq": topic_seq}
                if plain is None:  # the logged bytes plus the two numbers
                    self._put(topic, seq, merge_packed_maps(data, pack(numbers_map)))
                else:
                    await self.send(topic, {**plain, **numbers_map})
            self.appended += len(batch)
            self._watermark.mark_done(len(batch))
            for _ in batch:
                self._queue.task_done()

    async def _append_until_done(
        self, batch: Sequence[tuple[int, str, bytes]]
    ) -> list[tuple[int, int]]:
        backoff = 0.05
        while True:
            try:
                return await self._append_once(batch)
            except self.TRANSIENT as exc:
                log.warning("event log unavailable: %r", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


def no_event_log() -> OexecError:
    return OexecError(
        "this daemon keeps no event log to replay from (the Redis store with "
        "[cluster] shared_sequence = false, or [events] redis_stream = false)",
        code=ErrorCode.REPLAY_UNAVAILABLE,
    )
