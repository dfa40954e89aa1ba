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

The queueing, batching and PUB side are LoggedSequenceSink's (oexec/events/logged.py);
here only the Redis log. A lost reply is retried safely: the script remembers, per
daemon run, the highest local event number it appended, and answers a repeat with the
sequences already given instead of appending twice.

Every event carries ``epoch`` = the deployment's id (kept in Redis), the same for all
daemons: a new ``epoch`` means "sequences started again" (the Redis data was lost);
``src`` names the daemon run that published it. The stream is trimmed by MAXLEN at each
append and by age (``[events] retention_s``, the event's ``ts``) once a minute.

Entry fields: ``seq``, ``topic_seq``, ``topic``, ``data`` (msgpack of the event without
``seq``/``topic_seq``); ``decode_entry`` rebuilds the event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oexec.config import FrontConfig
from oexec.events.logged import DEFAULT_RETENTION_S, LoggedSequenceSink, LogRow
from oexec.events.mirror import seq_of
from oexec.store.keys import ClusterKeys
from oexec.wire import pack

log = logging.getLogger(__name__)

TRIM_PAGE = 500
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


def stream_keys(prefix: str) -> dict[str, str]:
    """The stream keeps the single-daemon mirror's name; the rest share its hash slot."""
    return ClusterKeys(prefix).events()


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


class SharedSequenceSink(LoggedSequenceSink):
    """EventSink for a daemon among several: stream first (shared ``seq``), then PUB.

    ``epoch`` is the deployment's id (kept in Redis); ``src`` names this daemon's run.
    """

    TRANSIENT = REDIS_FAILURES

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        redis: aioredis.Redis,
        prefix: str,
        maxlen: int = 1_000_000,
        buffer_size: int = 10_000,
        flush_timeout_s: float = 5.0,
        retention_s: float = DEFAULT_RETENTION_S,
        curve: FrontConfig | None = None,
    ) -> None:
        super().__init__(
            endpoints,
            retention_s=retention_s,
            retention_events=maxlen,
            buffer_size=buffer_size,
            flush_timeout_s=flush_timeout_s,
            curve=curve,
        )
        self._redis = redis
        self.keys = stream_keys(prefix)
        self._maxlen = maxlen
        self._append = redis.register_script(APPEND)
        self._run_id = uuid.uuid4().hex[:16]  # this run's key in the acks hash

    async def _open_log(self) -> tuple[int, str]:
        keys = self.keys
        seq = int(await self._redis.eval(INIT, 2, keys["seq"], keys["stream"]))
        await self._redis.set(keys["src"], uuid.uuid4().hex[:16], nx=True)
        epoch = await self._redis.get(keys["src"])
        return seq, epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    async def _append_once(self, batch: Sequence[tuple[int, str, bytes]]) -> list[tuple[int, int]]:
        """One script call; a repeat after a lost reply gets the sequences already given."""
        keys = self.keys
        args: list[Any] = [self._run_id, self._maxlen]
        for number, topic, data in batch:
            args += [number, topic, data if isinstance(data, bytes) else pack(data)]
        flat = await self._append(
            keys=[keys["seq"], keys["topic_seqs"], keys["stream"], keys["acks"]], args=args
        )
        return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def _read_log(self, from_seq: int, limit: int) -> tuple[list[LogRow], int, int]:
        return await read_log(self._redis, self.keys, from_seq, limit)

    async def _trim_log(self, older_than_ms: int, max_events: int) -> int:
        """MAXLEN bounds the size at every append; here only the age: the oldest entries
        whose ``ts`` is before the cutoff go (XTRIM MINID)."""
        return await trim_older(self._redis, self.keys["stream"], older_than_ms)


async def read_log(
    redis: aioredis.Redis, keys: dict[str, str], from_seq: int, limit: int
) -> tuple[list[LogRow], int, int]:
    """(rows with seq >= from_seq, trimmed_through, last seq), read in one MULTI."""
    pipe = redis.pipeline(transaction=True)
    pipe.xrange(keys["stream"], min=f"{from_seq}-0", max="+", count=limit)
    pipe.xrange(keys["stream"], min="-", max="+", count=1)
    pipe.get(keys["seq"])
    entries, first, counter = await pipe.execute()
    rows: list[LogRow] = []
    for _, fields in entries:
        topic, event = decode_entry(fields)
        seq, topic_seq = int(event.pop("seq")), int(event.pop("topic_seq", 0))
        rows.append((seq, topic, topic_seq, pack(event)))
    last = int(counter or 0)
    if first:
        last = max(last, seq_of(first[0][0]))
        trimmed = seq_of(first[0][0]) - 1
    else:
        trimmed = last  # nothing kept: everything numbered so far is gone
    return rows, trimmed, last


async def trim_older(redis: aioredis.Redis, stream_key: str, older_than_ms: int) -> int:
    """Trim stream entries whose event ``ts`` is before ``older_than_ms``; returns how many."""
    gone = 0
    while True:
        entries: Any = await redis.xrange(stream_key, min="-", max="+", count=TRIM_PAGE)
        keep_from: int | None = None
        for entry_id, fields in entries:
            _, event = decode_entry(fields)
            if int(event.get("ts", 0)) >= older_than_ms:
                keep_from = seq_of(entry_id)
                break
        if keep_from is None and entries:
            keep_from = seq_of(entries[-1][0]) + 1
        if keep_from is None:
            return gone
        removed = int(await redis.xtrim(stream_key, minid=f"{keep_from}-0", approximate=False))
        gone += removed
        if removed < TRIM_PAGE or len(entries) < TRIM_PAGE:
            return gone


async def read_after(
    redis: aioredis.Redis, stream_key: str, after_seq: int, *, count: int = 1000
) -> list[tuple[str, dict[str, Any]]]:
    """Events with seq > ``after_seq`` (at most ``count``), in sequence order."""
    entries: Any = await redis.xrange(stream_key, min=f"({after_seq}-0", max="+", count=count)
    return [decode_entry(fields) for _, fields in entries]


__all__ = ["SharedSequenceSink", "decode_entry", "read_after", "seq_of", "stream_keys"]
