"""One event sequence for every daemon on a Redis: append to the stream, then publish.

Why. With several daemons each numbering its own events, no subscriber can tell a lost
event from another daemon's, and the Redis Stream (whose entry ids must grow) cannot
take them all. Here the sequence *is* the stream: one Lua script assigns ``seq``
(``INCR``), the per-topic ``topic_seq`` (``HINCRBY``) and appends the entry with id
``<seq>-0`` in one atomic step, so the stream is gap-free and totally ordered across
daemons. Only then is the event put on this daemon's PUB socket, with the same
``seq``. A PUB subscriber of one daemon therefore sees gaps (the other daemons'
events); it fills them from the stream, or follows the stream itself
(``oexec.client.StreamSubscriber``, ``oexec watch --from SEQ``).

Off the order path: ``publish`` queues the event and returns 0 (its sequence is not
known yet); one task per daemon appends batches (one script call each, consecutive
sequences) and sends them on PUB in sequence order. A lost reply is retried safely:
the script remembers, per daemon run (``src``), the highest local event number it
appended, and answers a repeat with the sequences already given instead of appending
twice. When Redis is down the batch waits and retries with back-off; when the queue is
full an event is dropped (counted, logged) rather than blocking order handling.

Every event carries ``src`` = the deployment's id (kept in Redis), the same for all
daemons: a new ``src`` still means "sequences started again" (the Redis data was lost).

Entry fields: ``seq``, ``topic_seq``, ``topic``, ``data`` (msgpack of the event without
``seq``/``topic_seq``); ``decode_entry`` rebuilds the event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oexec.events.mirror import Watermark, seq_of
from oexec.events.publisher import ZmqEventSink, merge_packed_maps, pack_event
from oexec.tasks import cancel_and_wait
from oexec.wire import WIRE_VERSION, pack

log = logging.getLogger(__name__)

BATCH = 256
MAX_BACKOFF_S = 1.0
ACKS_TTL_MS = 7 * 86_400_000
REDIS_FAILURES = (RedisError, OSError, TimeoutError)

#: KEYS = seq, topic_seqs, stream, acks. ARGV = src, maxlen, then (no, topic, data) per
#: event. Returns {seq, topic_seq} per event (flattened).
APPEND = """
local ack = redis.call('HGET', KEYS[4], ARGV[1])
local last_no, last_seq = 0, 0
if ack then
  local a, b = string.match(ack, '^(%d+):(%d+)$')
  last_no, last_seq = tonumber(a), tonumber(b)
end
local out = {}
for i = 3, #ARGV, 3 do
  local no, topic, data = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  if no <= last_no then
    local seq = last_seq - (last_no - no)
    local entry = redis.call('XRANGE', KEYS[3], seq .. '-0', seq .. '-0')
    local tseq = 0
    if entry[1] then
      local f = entry[1][2]
      for j = 1, #f, 2 do if f[j] == 'topic_seq' then tseq = tonumber(f[j + 1]) end end
    end
    table.insert(out, seq)
    table.insert(out, tseq)
  else
    local seq = redis.call('INCR', KEYS[1])
    local tseq = redis.call('HINCRBY', KEYS[2], topic, 1)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], seq .. '-0',
      'seq', seq, 'topic_seq', tseq, 'topic', topic, 'data', data)
    table.insert(out, seq)
    table.insert(out, tseq)
    last_no, last_seq = no, seq
  end
end
redis.call('HSET', KEYS[4], ARGV[1], last_no .. ':' .. last_seq)
redis.call('PEXPIRE', KEYS[4], @ACKS_TTL_MS@)
return out
""".replace("@ACKS_TTL_MS@", str(ACKS_TTL_MS))

#: KEYS = seq, stream. The counter never below the stream's top (an older single-daemon
#: mirror may have written it). Returns the counter.
INIT = """
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local counter = tonumber(redis.call('GET', KEYS[1]) or '0')
if top[1] then
  local s = tonumber(string.match(top[1][1], '^(%d+)'))
  if s > counter then redis.call('SET', KEYS[1], s); counter = s end
end
return counter
"""


_Queued = tuple[int, str, bytes, dict[str, Any] | None]
_NUMBERS = frozenset(("seq", "topic_seq"))


def stream_keys(prefix: str) -> dict[str, str]:
    """The stream keeps the single-daemon mirror's name; the rest share its hash slot."""
    return {
        "stream": f"{prefix}events",
        "seq": f"{prefix}events:seq",
        "topic_seqs": f"{prefix}events:topic_seq",
        "acks": f"{prefix}events:acks",
        "src": f"{prefix}events:src",
    }


def decode_entry(fields: dict[bytes, bytes] | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A stream entry -> (topic, event map), whether written here or by StreamMirror."""
    plain = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    event = msgpack.unpackb(plain["data"], raw=False)
    if not isinstance(event, dict):
        raise ValueError("event body is not a map")
    for name in ("seq", "topic_seq"):
        if name in plain:
            event[name] = int(plain[name])
    topic = plain.get("topic", event.get("topic", b""))
    return (topic.decode() if isinstance(topic, bytes) else str(topic)), event


class SharedSequenceSink(ZmqEventSink):
    """EventSink for a daemon among several: stream first (shared ``seq``), then PUB."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        redis: aioredis.Redis,
        prefix: str,
        maxlen: int = 1_000_000,
        buffer_size: int = 10_000,
        flush_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(endpoints, flush_timeout_s=flush_timeout_s)
        self._redis = redis
        self.keys = stream_keys(prefix)
        self._maxlen = maxlen
        self._append = redis.register_script(APPEND)
        #: (local number, topic, packed event without seq/topic_seq, the event as a dict
        #: only when its payload has a seq or topic_seq key of its own)
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue(buffer_size)
        self._run_id = uuid.uuid4().hex[:16]  # this run's key in the acks hash
        self._local_no = 0
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.appended = 0
        self._watermark = Watermark()

    async def start(self) -> None:
        keys = self.keys
        self._seq = int(await self._redis.eval(INIT, 2, keys["seq"], keys["stream"]))
        await self._redis.set(keys["src"], uuid.uuid4().hex[:16], nx=True)
        src = await self._redis.get(keys["src"])
        self.src = src.decode() if isinstance(src, bytes) else str(src)
        await super().start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-sequence")

    async def publish(self, topic: str, payload: dict[str, Any]) -> int:
        """Queue the event; returns 0: the sequence is assigned when it is appended."""
        self._local_no += 1
        envelope = {
            "v": WIRE_VERSION,
            "topic": topic,
            "ts": time.time_ns() // 1_000_000,
            "src": self.src,
        }
        data = pack_event(payload, envelope)
        plain = None if _NUMBERS.isdisjoint(payload) else {**payload, **envelope}
        try:
            self._queue.put_nowait((self._local_no, topic, data, plain))
            self._watermark.mark_put()
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("event sequence queue full; event dropped", extra={"topic": topic})
        return 0

    async def flush(self) -> None:
        """Wait until every event published so far is appended and on PUB."""
        await self._watermark.wait()

    async def close(self) -> None:
        if self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), self._flush_timeout_s)
            except TimeoutError:
                self.dropped += self._queue.qsize()
                log.error("event sequence not flushed", extra={"left": self._queue.qsize()})
            await cancel_and_wait([self._task])
            self._task = None
        await super().close()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            numbers = await self._append_until_done([item[:3] for item in batch])
            for (_, topic, data, plain), (seq, topic_seq) in zip(batch, numbers, strict=True):
                self._seq = max(self._seq, seq)
                numbers_map = {"seq": seq, "topic_seq": topic_seq}
                if plain is None:  # the stream's bytes plus the two numbers
                    self._put(topic, seq, merge_packed_maps(data, pack(numbers_map)))
                else:
                    await self.send(topic, {**plain, **numbers_map})
            self.appended += len(batch)
            self._watermark.mark_done(len(batch))
            for _ in batch:
                self._queue.task_done()

    async def _append_until_done(
        self, batch: Sequence[tuple[int, str, bytes | dict[str, Any]]]
    ) -> list[tuple[int, int]]:
        """Append (local number, topic, event without seq/topic_seq, packed or not)."""
        keys = self.keys
        args: list[Any] = [self._run_id, self._maxlen]
        for number, topic, data in batch:
            args += [number, topic, data if isinstance(data, bytes) else pack(data)]
        backoff = 0.05
        while True:
            try:
                flat = await self._append(
                    keys=[keys["seq"], keys["topic_seqs"], keys["stream"], keys["acks"]],
                    args=args,
                )
                return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]
            except REDIS_FAILURES as exc:
                log.warning("event sequence: redis unavailable: %r", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


async def read_after(
    redis: aioredis.Redis, stream_key: str, after_seq: int, *, count: int = 1000
) -> list[tuple[str, dict[str, Any]]]:
    """Events with seq > ``after_seq`` (at most ``count``), in sequence order."""
    entries: Any = await redis.xrange(stream_key, min=f"({after_seq}-0", max="+", count=count)
    return [decode_entry(fields) for _, fields in entries]


__all__ = ["SharedSequenceSink", "decode_entry", "read_after", "seq_of", "stream_keys"]
