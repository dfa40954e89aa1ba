"""Copies published events into a Redis Stream, off the hot path.

``offer`` only puts the packed event on a bounded queue; a background task writes
batches with XADD (MAXLEN ~) through a pipeline. The stream entry id is ``<seq>-0``, so
a reader resumes after sequence N with ``XRANGE key (N-0 +`` and Redis itself refuses
an out-of-order write. When Redis is down the task retries with back-off; when the
queue is full the event is dropped from the mirror (counted, logged) rather than
blocking order handling — subscribers see that as a sequence gap.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from oexec.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BATCH = 256
MAX_BACKOFF_S = 1.0


class Watermark:
    """Items put on a FIFO queue vs items finished with; ``wait`` returns once every item
    put before the call is finished (written, or given up on). The outbox acknowledges
    events only past this mark."""

    def __init__(self) -> None:
        self.put = 0
        self.done = 0
        self._progress = asyncio.Event()

    def mark_put(self) -> None:
        self.put += 1

    def mark_done(self, count: int = 1) -> None:
        self.done += count
        self._progress.set()

    async def wait(self) -> None:
        target = self.put
        while self.done < target:
            self._progress.clear()
            await self._progress.wait()


def entry_id(seq: int) -> str:
    return f"{seq}-0"


def seq_of(entry: bytes | str) -> int:
    text = entry.decode() if isinstance(entry, bytes) else entry
    return int(text.split("-", 1)[0])


class StreamMirror:
    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        *,
        maxlen: int,
        buffer_size: int = 10_000,
    ) -> None:
        self._redis = redis
        self._key = key
        self._maxlen = maxlen
        self._queue: asyncio.Queue[tuple[int, str, bytes]] = asyncio.Queue(buffer_size)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # events that never reached the stream
        self.written = 0
        self._unwritten = 0  # accepted, not yet written or refused
        self.watermark = Watermark()

    async def last_seq(self) -> int:
        """The highest sequence already in the stream (0 when empty)."""
        entries: Any = await self._redis.xrevrange(self._key, count=1)
        return seq_of(entries[0][0]) if entries else 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stream-mirror:{self._key}")

    def offer(self, seq: int, topic: str, data: bytes) -> None:
        try:
            self._queue.put_nowait((seq, topic, data))
            self._unwritten += 1
            self.watermark.mark_put()
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("event stream mirror full; event dropped", extra={"seq": seq})

    async def close(self, timeout_s: float = 5.0) -> None:
        """Flush what is queued (up to ``timeout_s``), then stop the writer."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            self.dropped += self._unwritten
            log.error("event stream mirror not flushed", extra={"left": self._unwritten})
        await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_until_done(batch)
            self._unwritten -= len(batch)
            self.watermark.mark_done(len(batch))
            for _ in batch:
                self._queue.task_done()

    async def _write_until_done(self, batch: list[tuple[int, str, bytes]]) -> None:
        backoff = 0.05
        while True:
            try:
                await self._write(batch)
                return
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("event stream mirror: redis unavailable", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _write(self, batch: list[tuple[int, str, bytes]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for seq, topic, data in batch:
            pipe.xadd(
                self._key,
                {"seq": seq, "topic": topic, "data": data},
                id=entry_id(seq),
                maxlen=self._maxlen,
                approximate=True,
            )
        results = await pipe.execute(raise_on_error=False)
        for (seq, _, _), result in zip(batch, results, strict=True):
            if isinstance(result, RedisError):
                # e.g. an id not above the stream's top: written by an earlier attempt
                # of this batch, or another writer on the same key. Never retried.
                self.dropped += 1
                log.warning(
                    "event stream mirror: entry refused", extra={"seq": seq, "error": str(result)}
                )
            else:
                self.written += 1
