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

Numbered by the store (issue 14, one round trip per change). When the RedisStore on the
same Redis and prefix is told of this sink (``RedisStore.number_events``), the script
that stores a change, a fill or an account update also numbers its events and appends
them to the stream (``NUMBER`` in oexec/store/redis_scripts.py: the same ``INCR``,
``HINCRBY`` and ``XADD`` as ``APPEND``, so the sequence stays one across daemons and
restarts). The store asks ``prepare`` for the log entries (the event bytes, envelope
included, exactly what ``publish`` would log) and hands the numbers back (``numbered``);
the writer's ``publish`` of those events then finds them numbered and puts them on PUB
without a second round trip. Events published otherwise (redelivered ones, a store not
told) take the ``APPEND`` path as before.

Order on PUB. Several store calls of this daemon run at once on different connections,
and their replies may come back in another order than Redis ran them. Each call that
numbers (a store script or an ``APPEND``) holds a ticket while it is out, and a store
call's ticket until the writer has published what it numbered (at once, as the store
answers; at the latest when the loop turns); an event is sent once every ticket issued
before its own call came back is settled (a call sent after that reply runs after it in
Redis, so it can only get higher numbers), lowest ``seq`` first. So one daemon's PUB
stays in ``seq`` order, as with ``APPEND`` alone (tests/events/test_redis_round_trips.py).
An event numbered by a call whose reply was lost is in the stream but not on PUB:
subscribers fill the gap from the stream, and the outbox publishes it again later
(``redelivered``), as it does for every change whose publish it did not see.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oexec.config import FrontConfig
from oexec.events.logged import DEFAULT_RETENTION_S, LoggedSequenceSink, LogRow
from oexec.events.mirror import seq_of
from oexec.events.publisher import merge_packed_maps
from oexec.store.keys import ClusterKeys
from oexec.wire import pack

log = logging.getLogger(__name__)

TRIM_PAGE = 500
#: Numbered events whose publish has not come yet (a writer that skips announcing a
#: change leaves its entry behind; the oldest go first).
MAX_NUMBERED = 10_000
#: Payload keys that stop an event from being numbered by the store (the envelope's and
#: the numbers'): such a payload is logged by ``publish`` as before.
_RESERVED = frozenset(("v", "topic", "ts", "src", "epoch", "seq", "topic_seq"))
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
        self.redis = redis  # public: the store checks it numbers events on the same server
        self.keys = stream_keys(prefix)
        self.maxlen = maxlen
        self._append = redis.register_script(APPEND)
        self._run_id = uuid.uuid4().hex[:16]  # this run's key in the acks hash
        # numbering by the store (module doc, "Numbered by the store")
        self._ready = False
        self._tickets: dict[int, None] = {}  # calls out that may number events, oldest first
        self._last_ticket = 0
        self._barrier = 0  # for events sent by the APPEND path: its call's barrier
        #: (topic, payload bytes) -> (seq, topic_seq, logged bytes, barrier, ticket)
        self._numbered: OrderedDict[tuple[str, bytes], tuple[int, int, bytes, int, int]] = (
            OrderedDict()
        )
        self._unpublished: dict[int, int] = {}  # ticket -> its events not yet published
        self._held: list[tuple[int, int, str, bytes]] = []  # heap of (seq, barrier, ...)
        self._sent = asyncio.Event()
        self.numbered_by_store = 0  # events the store numbered and PUB sent (tests, bench)

    async def start(self) -> None:
        await super().start()
        self._ready = True

    async def close(self) -> None:
        self._ready = False  # the store numbers no more events here
        self._tickets.clear()  # calls still out would hold back what they cannot precede
        self._unpublished.clear()
        self._release()
        await super().close()

    async def _open_log(self) -> tuple[int, str]:
        keys = self.keys
        seq = int(await self.redis.eval(INIT, 2, keys["seq"], keys["stream"]))
        await self.redis.set(keys["src"], uuid.uuid4().hex[:16], nx=True)
        epoch = await self.redis.get(keys["src"])
        return seq, epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    async def _append_once(self, batch: Sequence[tuple[int, str, bytes]]) -> list[tuple[int, int]]:
        """One script call; a repeat after a lost reply gets the sequences already given."""
        keys = self.keys
        args: list[Any] = [self._run_id, self.maxlen]
        for number, topic, data in batch:
            args += [number, topic, data if isinstance(data, bytes) else pack(data)]
        ticket = self.reserve()
        try:
            flat = await self._append(
                keys=[keys["seq"], keys["topic_seqs"], keys["stream"], keys["acks"]], args=args
            )
        finally:
            self._barrier = self.settle(ticket)
        return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    # -- numbering by the store ---------------------------------------------------------
    def prepare(self, events: bytes) -> list[tuple[str, bytes, bytes]] | None:
        """(topic, payload bytes, bytes to log) per event of an outbox body (``pack_events``),
        or None when the store should not number them (not started, or a payload with a
        key of the envelope's). The logged bytes are what ``publish`` would log."""
        if not self._ready:
            return None
        entries = split_events(events)
        if entries is None:
            return None
        ts_ms = time.time_ns() // 1_000_000  # one time for the events of one change
        return [
            (topic, payload, merge_packed_maps(payload, pack(self.envelope(topic, ts_ms))))
            for topic, payload in entries
        ]

    def reserve(self) -> int:
        """A ticket for a call about to number events; ``settle`` it when it returns."""
        self._last_ticket += 1
        self._tickets[self._last_ticket] = None
        return self._last_ticket

    def settle(self, ticket: int) -> int:
        """The call of ``ticket`` returned (or failed); returns its barrier: the last
        ticket issued so far (a call issued later runs later in Redis)."""
        self._tickets.pop(ticket, None)
        barrier = self._last_ticket
        if self._held:
            self._release()
        return barrier

    def numbered(
        self,
        ticket: int,
        entries: Sequence[tuple[str, bytes, bytes]],
        numbers: Sequence[int],
    ) -> None:
        """The store's script logged ``entries`` with ``numbers`` (seq, topic_seq, ...);
        ``publish`` of these events sends them without logging them again.

        The ticket stays out until those events are published (the writer does so as soon
        as the store answers, before it next waits), or the loop turns: events this call
        did not publish by then are not waited for (``_give_up``)."""
        if len(numbers) != 2 * len(entries):  # not numbered here: publish logs them
            self.settle(ticket)
            return
        barrier = self._last_ticket
        numbered = self._numbered
        for i, (topic, payload, data) in enumerate(entries):
            seq, topic_seq = int(numbers[2 * i]), int(numbers[2 * i + 1])
            numbered[(topic, payload)] = (seq, topic_seq, data, barrier, ticket)
        while len(numbered) > MAX_NUMBERED:
            numbered.popitem(last=False)
        self._unpublished[ticket] = len(entries)
        asyncio.get_running_loop().call_soon(self._give_up, ticket)

    def _give_up(self, ticket: int) -> None:
        if self._unpublished.pop(ticket, None) is not None:
            self.settle(ticket)

    async def publish(self, topic: str, payload: dict[str, Any]) -> int:
        """An event the store numbered goes to PUB (in order); others are logged first."""
        if self._numbered:
            packed = getattr(payload, "packed", None)  # a PackedPayload's, as stored
            if packed is None:
                packed = pack(payload)
            hit = self._numbered.pop((topic, packed), None)
            if hit is not None:
                seq, topic_seq, data, barrier, ticket = hit
                self._seq = max(self._seq, seq)
                numbers = pack({"seq": seq, "topic_seq": topic_seq})
                heapq.heappush(self._held, (seq, barrier, topic, merge_packed_maps(data, numbers)))
                self.numbered_by_store += 1
                left = self._unpublished.get(ticket)
                if left == 1:  # the call's last event: its ticket is settled
                    del self._unpublished[ticket]
                    self.settle(ticket)
                else:
                    if left is not None:
                        self._unpublished[ticket] = left - 1
                    self._release()
                return seq
        return await super().publish(topic, payload)

    def _put(self, topic: str, seq: int, data: bytes) -> None:
        """The APPEND path's events wait their turn like the store's (module doc)."""
        heapq.heappush(self._held, (seq, self._barrier, topic, data))
        self._release()

    def _release(self) -> None:
        held = self._held
        low = next(iter(self._tickets), None)
        sent = False
        while held and (low is None or held[0][1] < low):
            seq, _, topic, data = heapq.heappop(held)
            super()._put(topic, seq, data)
            sent = True
        if sent:
            self._sent.set()

    async def flush(self) -> None:
        """Also wait until every event numbered by the store and published so far is sent."""
        await super().flush()
        if self._held:
            last = max(item[0] for item in self._held)
            while self._held and self._held[0][0] <= last:
                self._sent.clear()
                await self._sent.wait()

    async def _read_log(self, from_seq: int, limit: int) -> tuple[list[LogRow], int, int]:
        return await read_log(self.redis, self.keys, from_seq, limit)

    async def _trim_log(self, older_than_ms: int, max_events: int) -> int:
        """MAXLEN bounds the size at every append; here only the age: the oldest entries
        whose ``ts`` is before the cutoff go (XTRIM MINID)."""
        return await trim_older(self.redis, self.keys["stream"], older_than_ms)


def split_events(body: bytes) -> list[tuple[str, bytes]] | None:
    """(topic, payload bytes) per event of an outbox body (``pack_events``: an array of
    [topic, payload map]); None if a payload has a key of the envelope's or the body is
    not of that shape. The payload bytes are sliced out as they are, never re-packed."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(body)
    out = []
    try:
        for _ in range(unpacker.read_array_header()):
            if unpacker.read_array_header() != 2:
                return None
            topic = unpacker.unpack()
            start = unpacker.tell()
            for _ in range(unpacker.read_map_header()):
                if unpacker.unpack() in _RESERVED:
                    return None
                unpacker.skip()
            if not isinstance(topic, str):
                return None
            out.append((topic, body[start : unpacker.tell()]))
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    return out


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


__all__ = [
    "SharedSequenceSink",
    "decode_entry",
    "read_after",
    "seq_of",
    "split_events",
    "stream_keys",
]
