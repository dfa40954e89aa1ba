"""RedisStore: the shared, production OrderStore (several daemons on one Redis).

Every mutating operation is one Lua script (oexec/store/redis_scripts.py), so it is one
round trip and atomic across all daemons sharing the Redis: of N concurrent claims of a
request_id exactly one wins wherever they come from (issue 8), ``save`` is a
compare-and-set on the version, and ``add_fill`` records a (symbol, trade_id) once.

The client never retries a command by itself: a write whose reply was lost might have
landed, and only the caller knows whether repeating it is safe. Instead the scripts make
the obvious retries harmless: a repeated claim of the same order finds its own id and
reports a win; a repeated save of identical bytes succeeds without a second history
entry. Every Redis failure surfaces as StoreError(STORE_UNAVAILABLE), never a raw redis
exception; a stale pooled connection is caught by a PING before use after idling.

Why one module over ~400 lines: it is one method per operation of the OrderStore contract
(about thirty, most a few lines around a script call); split by table they would scatter
what the contract test suite (tests/store) checks as one unit.

Events numbered with the change (issue 14). Told of the shared event sequence on the same
Redis and prefix (``number_events``; oexec/events/sequence.py), ``save``, ``add_fill`` and
``outbox_put`` also number their events and append them to the sequence's stream in
their script, so that announcing a fill or a change costs one round trip, not two (the
store's, then the sequence's). Without it, or before the sequence has started, the
events are numbered when published, as before.

Durability is Redis's: with appendonly + ``appendfsync everysec`` (recommended) a crash
of the Redis host loses at most about one second of writes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from oexec.errors import StoreError
from oexec.models import Fill, Order
from oexec.service.ports import (
    ClaimResult,
    OutboxEntry,
    outbox_id_for_fill,
    outbox_id_for_order,
)
from oexec.store import codec, failures
from oexec.store import redis_scripts as lua
from oexec.store.keys import DEFAULT_PREFIX, FIELD_BODY, JOURNAL_MAX_ENTRIES, ORDER_TTL_S, Keys
from oexec.store.redis_connect import connect

T = TypeVar("T")
ScriptArg = bytes | str | int | float


class EventNumbering(Protocol):
    """What the store needs of the shared event sequence (SharedSequenceSink)."""

    keys: dict[str, str]
    maxlen: int
    redis: aioredis.Redis

    def prepare(self, events: bytes) -> list[tuple[str, bytes, bytes]] | None: ...

    def reserve(self) -> int: ...

    def settle(self, ticket: int) -> int: ...

    def numbered(
        self, ticket: int, entries: Sequence[tuple[str, bytes, bytes]], numbers: Sequence[int]
    ) -> None: ...


class RedisStore:
    """OrderStore on Redis. One instance per daemon; one connection pool per instance."""

    #: Every claim is decided by Redis before the send: none can be lost to this daemon's
    #: host going down (Redis' own persistence is the server's, docs/configuration.md).
    uncertain_until_ms = 0

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        order_ttl_s: int = ORDER_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._keys = Keys(prefix)
        self._order_ttl_s = order_ttl_s
        self._clock = clock
        self._claim = client.register_script(lua.CLAIM)
        self._save = client.register_script(lua.SAVE)
        self._add_fill = client.register_script(lua.ADD_FILL)
        self._get_via = client.register_script(lua.GET_VIA)
        self._open = client.register_script(lua.OPEN_ORDERS)
        self._open_count = client.register_script(lua.OPEN_COUNT)
        self._history = client.register_script(lua.HISTORY)
        self._release = client.register_script(lua.RELEASE)
        self._outbox_take = client.register_script(lua.OUTBOX_TAKE)
        self._outbox_put = client.register_script(lua.OUTBOX_PUT)
        self._numbering: EventNumbering | None = None
        self._scripts = (
            self._claim,
            self._save,
            self._add_fill,
            self._get_via,
            self._open,
            self._open_count,
            self._history,
            self._release,
            self._outbox_take,
            self._outbox_put,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        order_ttl_s: int = ORDER_TTL_S,
        timeout_s: float = 2.0,
        max_connections: int = 64,
    ) -> RedisStore:
        client = connect(url, timeout_s=timeout_s, max_connections=max_connections)
        return cls(client, prefix=prefix, order_ttl_s=order_ttl_s)

    @property
    def keys(self) -> Keys:
        return self._keys

    def number_events(self, numbering: EventNumbering) -> bool:
        """Number stored events in the store's scripts (module doc), if ``numbering``'s
        stream is this store's (same prefix) on the same Redis; returns whether it is."""
        if numbering.keys.get("stream") != f"{self._keys.prefix}events" or not same_server(
            self._redis, numbering.redis
        ):
            return False
        self._numbering = numbering
        return True

    async def start(self) -> None:
        """Check Redis is reachable (fail fast at start-up) and load the scripts, so the
        first claims are single EVALSHA round trips; raises StoreError."""
        await self.ping()
        for script in self._scripts:
            await self._run("script_load", self._redis.script_load(script.script))

    # --- writes -------------------------------------------------------------------------
    async def claim(
        self, order: Order, ttl_s: int, *, events: bytes | None = None, early: bool = False
    ) -> ClaimResult:
        """Claim ``order.request_id`` and write ``order`` with its indexes, atomically.

        ``early`` changes nothing here: several daemons may share the store, so the claim
        is decided by the script, one round trip, before the order may be sent.

        Raises StoreError if Redis fails (the claim may or may not have landed: a repeat
        with the same order then reports the win), StoreConflictError if ``order.id``
        is already stored under another request.
        """
        k = self._keys
        keys = [
            k.idempotency(order.request_id),
            k.order(order.id),
            k.client_order_id(order.client_order_id),
            k.open(),
            k.open(order.symbol),
            k.history(),
            k.history(order.symbol),
            k.states(order.id),
            k.reply(order.request_id),
            k.outbox,
            k.outbox_entries,
        ]
        args: list[ScriptArg] = [
            order.id,
            ttl_s,
            codec.encode_order(order),
            order.version,
            self._order_ttl_s,
            order.created_at,
            _flag(not order.is_terminal),
            codec.state_entry(order, "claim"),
            k.order_prefix,
            self._history_cutoff_ms(),
            outbox_id_for_order(order) if events else "",
            events or b"",
            self._now_ms(),
        ]
        result = await self._run("claim", self._claim(keys=keys, args=args))
        status = int(result[0])
        if status == lua.WON:
            return ClaimResult(claimed=True, order=order)
        if status == lua.ID_TAKEN:
            raise failures.id_taken(order)
        existing_id, body, reply = _text(result[1]), result[2], result[3]
        if body is None:
            raise failures.claim_orphaned(order.request_id, existing_id)
        if existing_id == order.id:  # our own earlier attempt landed
            return ClaimResult(claimed=True, order=codec.decode_order(body))
        return ClaimResult(claimed=False, order=codec.decode_order(body), reply=reply)

    async def save(
        self,
        order: Order,
        *,
        reason: str = "",
        events: bytes | None = None,
        reply: bytes | None = None,
        reply_ttl_s: int = 0,
        owes_fills: bool = False,
    ) -> None:
        """Write ``order`` if the stored version is ``order.version - 1`` (with its outbox
        entry, cached reply and owed-fills mark, in the same script).

        Raises StoreConflictError otherwise (or if the order is not stored), StoreError
        if Redis fails.
        """
        k = self._keys
        keys = [
            k.order(order.id),
            k.open(),
            k.open(order.symbol),
            k.states(order.id),
            k.client_order_id(order.client_order_id),
            k.outbox,
            k.outbox_entries,
            k.reply(order.request_id),
            k.owed_fills,
        ]
        args: list[ScriptArg] = [
            codec.encode_order(order),
            order.version,
            self._order_ttl_s,
            _flag(not order.is_terminal),
            order.id,
            codec.state_entry(order, reason),
            outbox_id_for_order(order) if events else "",
            events or b"",
            self._now_ms(),
            reply or b"",
            max(1, reply_ttl_s),
            _flag(owes_fills),
        ]
        result = await self._numbered_call("save", self._save, keys, args, events)
        status = int(result[0])
        if status == lua.WON:
            return
        stored = int(result[1]) if status == lua.LOST else None
        raise failures.version_conflict(order, stored)

    async def release(self, order: Order) -> bool:
        """Undo the claim of ``order`` if it is still stored at ``order.version``."""
        k = self._keys
        keys = [
            k.order(order.id),
            k.idempotency(order.request_id),
            k.client_order_id(order.client_order_id),
            k.open(),
            k.open(order.symbol),
            k.history(),
            k.history(order.symbol),
            k.states(order.id),
            k.reply(order.request_id),
        ]
        args: list[ScriptArg] = [order.version, order.id]
        return bool(await self._run("release", self._release(keys=keys, args=args)))

    async def save_reply(self, request_id: str, reply: bytes, ttl_s: int) -> None:
        await self._run(
            "save_reply", self._redis.set(self._keys.reply(request_id), reply, ex=ttl_s)
        )

    async def add_fill(self, fill: Fill, *, events: bytes | None = None) -> bool:
        k = self._keys
        keys = [
            k.fill(fill.symbol, fill.trade_id),
            k.fills(fill.order_id),
            k.outbox,
            k.outbox_entries,
        ]
        args: list[ScriptArg] = [
            fill.order_id,
            codec.encode_fill(fill),
            self._order_ttl_s,
            outbox_id_for_fill(fill) if events else "",
            events or b"",
            self._now_ms(),
        ]
        result = await self._numbered_call("add_fill", self._add_fill, keys, args, events)
        return int(result[0]) == lua.WON

    async def outbox_take(self, older_than_ms: int, limit: int = 500) -> list[OutboxEntry]:
        k = self._keys
        flat = await self._run(
            "outbox_take",
            self._outbox_take(
                keys=[k.outbox, k.outbox_entries], args=[older_than_ms, limit, self._now_ms()]
            ),
        )
        return [
            OutboxEntry(id=_text(flat[i]), body=_bytes(flat[i + 1])) for i in range(0, len(flat), 2)
        ]

    async def outbox_put(self, entry_id: str, events: bytes) -> None:
        """Entry and stamp (and the events' numbers) in one script."""
        keys = [self._keys.outbox, self._keys.outbox_entries]
        args: list[ScriptArg] = [entry_id, events, self._now_ms()]
        await self._numbered_call("outbox_put", self._outbox_put, keys, args, events)

    async def outbox_ack(self, entry_ids: Sequence[str]) -> None:
        if not entry_ids:
            return
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._keys.outbox, *entry_ids)
        pipe.hdel(self._keys.outbox_entries, *entry_ids)
        await self._run("outbox_ack", pipe.execute())

    async def owed_fills(self) -> list[str]:
        members = await self._run("owed_fills", self._redis.smembers(self._keys.owed_fills))
        return sorted(_text(m) for m in members)

    async def settle_fills(self, order_id: str) -> None:
        await self._run("settle_fills", self._redis.srem(self._keys.owed_fills, order_id))

    # --- reads --------------------------------------------------------------------------
    async def get_reply(self, request_id: str) -> bytes | None:
        reply = await self._run("get_reply", self._redis.get(self._keys.reply(request_id)))
        return None if reply is None else _bytes(reply)

    async def get(self, order_id: str) -> Order | None:
        body = await self._run(
            "get",
            self._redis.hget(self._keys.order(order_id), FIELD_BODY),
        )
        return None if body is None else codec.decode_order(body)

    async def get_by_request_id(self, request_id: str) -> Order | None:
        return await self._get_via_pointer(self._keys.idempotency(request_id))

    async def get_by_client_order_id(self, client_order_id: str) -> Order | None:
        return await self._get_via_pointer(self._keys.client_order_id(client_order_id))

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Non-terminal orders (including ones not yet sent), oldest first."""
        bodies = await self._run(
            "open_orders",
            self._open(keys=[self._keys.open(symbol)], args=[self._keys.order_prefix]),
        )
        orders = [codec.decode_order(b) for b in bodies]
        orders.sort(key=lambda o: (o.created_at, o.id))
        return orders

    async def open_order_count(self, symbol: str | None = None) -> int:
        count = await self._run(
            "open_order_count",
            self._open_count(keys=[self._keys.open(symbol)], args=[self._keys.order_prefix]),
        )
        return int(count)

    async def history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]:
        """Orders created in [start_ms, end_ms], newest first, at most ``limit``."""
        if limit <= 0:
            return []
        args: list[ScriptArg] = [
            self._keys.order_prefix,
            "+inf" if end_ms is None else end_ms,
            "-inf" if start_ms is None else start_ms,
            limit,
        ]
        bodies = await self._run(
            "history", self._history(keys=[self._keys.history(symbol)], args=args)
        )
        return [codec.decode_order(b) for b in bodies]

    async def state_history(self, order_id: str) -> list[dict[str, Any]]:
        entries = await self._run(
            "state_history",
            self._redis.lrange(self._keys.states(order_id), 0, -1),
        )
        return [codec.decode_state_entry(e) for e in entries]

    async def fills(self, order_id: str) -> list[Fill]:
        entries = await self._run(
            "fills",
            self._redis.lrange(self._keys.fills(order_id), 0, -1),
        )
        return [codec.decode_fill(e) for e in entries]

    async def append_journal(self, client_order_id: str, entries: Sequence[bytes]) -> None:
        """RPUSH + LTRIM + EXPIRE in one MULTI: append-only, capped, expiring."""
        if not entries:
            return
        key = self._keys.journal(client_order_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(key, *entries)
        pipe.ltrim(key, -JOURNAL_MAX_ENTRIES, -1)
        pipe.expire(key, self._order_ttl_s)
        await self._run("append_journal", pipe.execute())

    async def append_journal_many(self, batch: Mapping[str, Sequence[bytes]]) -> None:
        """Every order's RPUSH + LTRIM + EXPIRE in one MULTI: one round trip per flush."""
        pipe = self._redis.pipeline(transaction=True)
        queued = False
        for client_order_id, entries in batch.items():
            if entries:
                key = self._keys.journal(client_order_id)
                pipe.rpush(key, *entries)
                pipe.ltrim(key, -JOURNAL_MAX_ENTRIES, -1)
                pipe.expire(key, self._order_ttl_s)
                queued = True
        if queued:
            await self._run("append_journal_many", pipe.execute())

    async def journal(self, client_order_id: str) -> list[bytes]:
        entries = await self._run(
            "journal", self._redis.lrange(self._keys.journal(client_order_id), 0, -1)
        )
        return [_bytes(e) for e in entries]

    async def ping(self) -> None:
        await self._run("ping", self._redis.ping())

    async def close(self) -> None:
        pool = self._redis.connection_pool
        await self._redis.aclose()
        await pool.aclose()

    # --- helpers ------------------------------------------------------------------------
    async def _numbered_call(
        self,
        op: str,
        script: Any,
        keys: list[str],
        args: list[ScriptArg],
        events: bytes | None,
    ) -> Any:
        """Run a script that stores ``events``; with a numbering, it numbers them too and
        the numbers (after the status, when it is WON) go to the numbering."""
        numbering = self._numbering
        entries = numbering.prepare(events) if numbering is not None and events else None
        if numbering is None or not entries:
            args += (0, 0)
            return await self._run(op, script(keys=keys, args=args))
        k = numbering.keys
        keys += (k["seq"], k["topic_seqs"], k["stream"])
        args += (len(entries), numbering.maxlen)
        for topic, _, data in entries:
            args += (topic, data)
        ticket = numbering.reserve()
        handed = False  # the ticket goes with the numbers, or is settled here
        try:
            result = await self._run(op, script(keys=keys, args=args))
            if int(result[0]) == lua.WON:
                numbering.numbered(ticket, entries, result[1:])
                handed = True
        finally:
            if not handed:  # failed, lost, or nothing numbered: hold no event back
                numbering.settle(ticket)
        return result

    async def _get_via_pointer(self, pointer: str) -> Order | None:
        body = await self._run(
            "lookup", self._get_via(keys=[pointer], args=[self._keys.order_prefix])
        )
        return None if body is None else codec.decode_order(body)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _history_cutoff_ms(self) -> int:
        return int((self._clock() - self._order_ttl_s) * 1000)

    async def _run(self, op: str, awaitable: Awaitable[T]) -> T:
        """Await a Redis call; any Redis or socket failure becomes StoreError.

        A lost connection drops every idle pooled one too: after a Redis restart they
        all point at the dead server, and each would fail one more request (the pool's
        PING-before-reuse only runs after HEALTH_CHECK_INTERVAL_S of idling).
        """
        try:
            return await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            if isinstance(exc, ConnectionError | RedisConnectionError):
                with contextlib.suppress(RedisError, OSError):
                    await self._redis.connection_pool.disconnect(inuse_connections=False)
            raise StoreError(
                f"redis {op} failed: {type(exc).__name__}: {exc}",
                details={"op": op},
            ) from exc


def same_server(one: aioredis.Redis, other: Any) -> bool:
    """Whether two clients' pools connect to the same server and database."""
    if not isinstance(other, aioredis.Redis):
        return False

    def target(client: aioredis.Redis) -> tuple[Any, ...]:
        pool = client.connection_pool
        kw = pool.connection_kwargs
        service = getattr(pool, "service_name", None)
        return (kw.get("host"), kw.get("port"), kw.get("path"), kw.get("db", 0), service)

    return target(one) == target(other)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
