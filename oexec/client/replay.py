"""Replay events: through the daemon's ``replay`` op, or from its Redis Stream.

- ``DaemonReplay(request_endpoint)``: range reads with the ``replay`` op, on either
  store; ``Subscriber(..., daemon=endpoint)`` uses one to heal its gaps.

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
import zmq.asyncio

from oexec.client.aio import AsyncClient
from oexec.client.curve import CurveKeys
from oexec.client.errors import ReplayError
from oexec.client.subscriber import Event, Gap
from oexec.errors import ErrorCode
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


class DaemonReplay:
    """Range reads through the daemon's ``replay`` op (request socket; either store).

    Pages until the range is covered. A range older than the daemon's retention is
    reported, not raised: the first event after it carries it as ``gap``.
    """

    def __init__(
        self,
        client: AsyncClient | str,
        *,
        page: int = 1000,
        context: zmq.asyncio.Context | None = None,
        curve: CurveKeys | None = None,
    ) -> None:
        if isinstance(client, str):
            client = AsyncClient(client, context=context, curve=curve)
            self._owned = True
        else:
            self._owned = False
        self.client = client
        self.page = page
        #: the daemon's event log id, from the last page read ("" before any)
        self.epoch = ""

    async def between(
        self, after: int, before: int | None, *, topics: Sequence[str] = ()
    ) -> list[Event]:
        out: list[Event] = []
        from_seq = after + 1
        lost: Gap | None = None
        while before is None or from_seq < before:
            fields: dict[str, Any] = {"from_seq": from_seq, "limit": self.page}
            if topics:
                fields["topics"] = list(topics)
            try:
                page = await self.client.call("replay", fields)
            except ReplayError as exc:
                oldest = int(exc.details.get("oldest_seq", 0))
                if exc.code != ErrorCode.REPLAY_EXPIRED or oldest <= from_seq:
                    raise
                last = oldest - 1 if before is None else min(oldest - 1, before - 1)
                lost = Gap(from_seq, last)
                from_seq = oldest
                continue
            self.epoch = str(page.get("epoch") or "")
            for data in page["events"]:
                seq = int(data["seq"])
                if before is not None and seq >= before:
                    return out
                out.append(event_from(str(data.get("topic", "")), data, lost))
                lost = None
            next_seq = int(page["next_seq"])
            if next_seq > int(page["last_seq"]) or next_seq <= from_seq:
                break
            from_seq = next_seq
        return out

    def close_now(self) -> None:
        """Close an owned client at once (Subscriber.close is synchronous)."""
        if self._owned:
            self.client.close_nowait()

    async def close(self) -> None:
        if self._owned:
            await self.client.close()


class StreamReplay:
    """Range reads of the event stream."""

    def __init__(self, redis: aioredis.Redis | str, key: str = DEFAULT_STREAM_KEY) -> None:
        self.redis, self._owned = _client(redis)
        self.key = key

    async def between(
        self, after: int, before: int | None, *, topics: Sequence[str] = (), page: int = 1000
    ) -> list[Event]:
        """Events with ``after`` < seq < ``before`` (None: up to the newest), in order."""
        prefixes = tuple(t for t in topics if t)
        out: list[Event] = []
        low = after
        high = "+" if before is None else f"({before}-0"
        while True:
            entries: Any = await self.redis.xrange(self.key, min=f"({low}-0", max=high, count=page)
            for _, fields in entries:
                topic, data = decode_entry(fields)
                low = int(data["seq"])
                if not prefixes or topic.startswith(prefixes):
                    out.append(event_from(topic, data))
            if len(entries) < page:
                return out

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
