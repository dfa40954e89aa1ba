"""Replay events from the daemon's Redis Stream, then follow it live (docs/wire.md, gaps).

The stream holds every event with its ``seq`` as entry id (``<seq>-0``), bounded by
MAXLEN. With several daemons on one Redis (docs/deployment.md) it is the one gap-free
sequence of the whole deployment; one daemon's PUB socket only carries its own events.

- ``StreamSubscriber(redis_url, from_seq=N)``: every event with seq > N, in order, then
  new ones as they are appended (``XREAD BLOCK``), each exactly once. A subscriber that
  drops off resumes with ``from_seq`` = the last seq it processed.
- ``StreamReplay``: fetches a range; ``Subscriber(..., replay=StreamReplay(...))`` uses
  it to fill the gaps it sees on PUB.

Events the stream no longer holds (trimmed) are reported as a ``Gap`` on the next event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from oexec.client.subscriber import Event, Gap
from oexec.events.sequence import decode_entry

DEFAULT_STREAM_KEY = "oexec:events"


def event_from(topic: str, data: dict[str, Any], gap: Gap | None = None) -> Event:
    return Event(
        topic,
        int(data["seq"]),
        int(data.get("topic_seq", 0)),
        int(data.get("ts", 0)),
        str(data.get("src", "")),
        data,
        gap,
    )


def _client(redis: aioredis.Redis | str) -> tuple[aioredis.Redis, bool]:
    if isinstance(redis, str):
        return aioredis.from_url(redis), True
    return redis, False


class StreamReplay:
    """Range reads of the event stream."""

    def __init__(self, redis: aioredis.Redis | str, key: str = DEFAULT_STREAM_KEY) -> None:
        self.redis, self._owned = _client(redis)
        self.key = key

    async def between(self, after: int, before: int | None, *, page: int = 1000) -> list[Event]:
        """Events with ``after`` < seq < ``before`` (None: up to the newest), in order."""
        out: list[Event] = []
        low = after
        high = "+" if before is None else f"({before}-0"
        while True:
            entries: Any = await self.redis.xrange(self.key, min=f"({low}-0", max=high, count=page)
            for _, fields in entries:
                topic, data = decode_entry(fields)
                out.append(event_from(topic, data))
            if len(entries) < page:
                return out
            low = out[-1].seq

    async def close(self) -> None:
        if self._owned:
            await self.redis.aclose()


class StreamSubscriber:
    """``async for event in StreamSubscriber(url, from_seq=last): ...`` (see module doc).

    ``topics`` are prefixes (empty: all); filtered events still advance the position.
    """

    def __init__(
        self,
        redis: aioredis.Redis | str,
        key: str = DEFAULT_STREAM_KEY,
        *,
        from_seq: int = 0,
        topics: Sequence[str] = (),
        block_ms: int = 1000,
        batch: int = 500,
    ) -> None:
        self.redis, self._owned = _client(redis)
        self.key = key
        self.last_seq = from_seq  # the last event delivered (or skipped by topic)
        self._topics = tuple(t for t in topics if t)
        self._block_ms = block_ms
        self._batch = batch
        self._pending: deque[Event] = deque()

    def __aiter__(self) -> StreamSubscriber:
        return self

    async def __anext__(self) -> Event:
        return await self.receive()

    async def receive(self) -> Event:
        while not self._pending:
            await self._read()
        return self._pending.popleft()

    async def _read(self) -> None:
        reply: Any = await self.redis.xread(
            {self.key: f"{self.last_seq}-0"}, count=self._batch, block=self._block_ms
        )
        for _, entries in reply or []:
            for _, fields in entries:
                topic, data = decode_entry(fields)
                seq = int(data["seq"])
                gap = Gap(self.last_seq + 1, seq - 1) if seq > self.last_seq + 1 else None
                self.last_seq = seq
                if not self._topics or topic.startswith(self._topics):
                    self._pending.append(event_from(topic, data, gap))

    async def close(self) -> None:
        if self._owned:
            await self.redis.aclose()

    async def __aenter__(self) -> StreamSubscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
