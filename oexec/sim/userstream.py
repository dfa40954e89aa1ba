"""The user data stream: listen keys (§G.1) and the WebSocket that pushes engine events.

One listen key per account, valid ``ttl_s`` after creation or the last keepalive;
creating again returns the same key and extends it. Unknown or expired keys answer
-1125. Each WebSocket connection gets its own queue fed by the engine's ``subscribe``
callback; a sender task applies the stream faults (drop, delay, reorder, disconnect) and
serialises. On expiry the connection receives ``listenKeyExpired`` and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import string
from collections.abc import Callable
from typing import Any

import attrs
import orjson
from aiohttp import web

from oexec.sim.engine import Exchange, SimError
from oexec.sim.faults import FaultInjector, param_ms

Json = dict[str, Any]
HOUSEKEEPING_S = 0.1
_KEY_ALPHABET = string.ascii_letters + string.digits  # venue keys: 64 alphanumerics


def _unknown_key() -> SimError:
    return SimError(-1125, "This listenKey does not exist.")


@attrs.define
class _Key:
    key: str
    account_id: str
    expires_ms: int


@attrs.define(eq=False)
class _Connection:
    key: str
    ws: web.WebSocketResponse
    combined: bool
    events: frozenset[str] | None = None  # /private/ws?...&events=A/B: only these
    close_socket: bool = True  # False: one of several keys SUBSCRIBEd on one socket
    queue: asyncio.Queue[Json | None] = attrs.field(factory=asyncio.Queue)
    held: Json | None = None  # an event kept back by stream_reorder


class UserStreams:
    """Listen-key registry plus the live WebSocket connections per key."""

    def __init__(
        self,
        exchange: Exchange,
        faults: FaultInjector,
        now_ms: Callable[[], int],
        ttl_s: int = 3600,
    ) -> None:
        self.exchange = exchange
        self.faults = faults
        self.now_ms = now_ms
        self.ttl_ms = ttl_s * 1000
        self._keys: dict[str, _Key] = {}
        self._by_account: dict[str, str] = {}
        self._connections: dict[str, set[_Connection]] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- REST: POST/PUT/DELETE /fapi/v1/listenKey -----------------------------------------
    def create(self, account_id: str) -> Json:
        """Return the account's active key (extended) or a new one."""
        current = self._by_account.get(account_id)
        now = self.now_ms()
        if current is not None and self._keys[current].expires_ms > now:
            self._keys[current].expires_ms = now + self.ttl_ms
            return {"listenKey": current}
        if current is not None:
            self._expire(current)
        key = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(64))
        self._keys[key] = _Key(key, account_id, now + self.ttl_ms)
        self._by_account[account_id] = key
        if account_id not in self._unsubscribe:
            self._unsubscribe[account_id] = self.exchange.subscribe(
                account_id, functools.partial(self._publish, account_id)
            )
        return {"listenKey": key}

    def keepalive(self, account_id: str) -> Json:
        """Extend the account's key by ``ttl``; -1125 when it has none (or it expired)."""
        key = self._active_key(account_id)
        self._keys[key].expires_ms = self.now_ms() + self.ttl_ms
        return {"listenKey": key}

    def close(self, account_id: str) -> Json:
        """Invalidate the account's key and close its connections."""
        key = self._active_key(account_id)
        self._drop(key, notify=False)
        return {}

    def _active_key(self, account_id: str) -> str:
        key = self._by_account.get(account_id)
        if key is None or self._keys[key].expires_ms <= self.now_ms():
            raise _unknown_key()
        return key

    # -- expiry ---------------------------------------------------------------------------
    def housekeeping(self) -> None:
        """Expire keys past their validity, or hit by a ``listen_key_expiry`` fault."""
        now = self.now_ms()
        for key, record in list(self._keys.items()):
            if record.expires_ms <= now or self.faults.roll("listen_key_expiry", key) is not None:
                self._expire(key)

    async def run_housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            self.housekeeping()

    def _expire(self, key: str) -> None:
        self._drop(key, notify=True)

    def _drop(self, key: str, *, notify: bool) -> None:
        record = self._keys.pop(key, None)
        if record is None:
            return
        if self._by_account.get(record.account_id) == key:
            del self._by_account[record.account_id]
        event = {"e": "listenKeyExpired", "E": self.now_ms(), "listenKey": key}
        for conn in self._connections.pop(key, set()):
            if notify:
                conn.queue.put_nowait(event)
            conn.queue.put_nowait(None)

    def reset(self) -> None:
        """Forget every key and close every connection (used by /_sim/reset)."""
        for key in list(self._keys):
            self._drop(key, notify=False)
        for unsubscribe in self._unsubscribe.values():
            unsubscribe()
        self._unsubscribe.clear()

    async def shutdown(self, grace_s: float = 1.0) -> None:
        self.reset()
        if self._tasks:  # let the send loops finish their close handshakes first
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def connection_count(self) -> int:
        return sum(len(c) for c in self._connections.values())

    # -- events -----------------------------------------------------------------------------
    def _publish(self, account_id: str, event: Json) -> None:
        key = self._by_account.get(account_id)
        if key is None:
            return
        for conn in self._connections.get(key, ()):
            if conn.events is None or event.get("e") in conn.events:
                conn.queue.put_nowait(event)

    # -- WebSocket ------------------------------------------------------------------------
    async def websocket(
        self,
        request: web.Request,
        key: str,
        combined: bool,
        events: frozenset[str] | None = None,
    ) -> web.StreamResponse:
        """Serve ``/ws/<listenKey>``, ``/stream?streams=<listenKey>`` or the ``/private``
        forms until closed; ``events`` keeps only those event types."""
        record = self._keys.get(key)
        if record is None or record.expires_ms <= self.now_ms():
            error = _unknown_key()
            return web.json_response(error.to_json(), status=400)
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        conn = _Connection(key, ws, combined, events)
        self._connections.setdefault(key, set()).add(conn)
        sender = asyncio.create_task(self._send_loop(conn))
        self._tasks.add(sender)
        sender.add_done_callback(self._tasks.discard)
        try:
            async for _ in ws:  # client messages are ignored, as on the venue
                pass
        finally:
            self._connections.get(key, set()).discard(conn)
            conn.queue.put_nowait(None)
            await asyncio.wait({sender})
        return ws

    async def subscribable(self, request: web.Request) -> web.StreamResponse:
        """``/private/stream`` without a key: listen keys are added by ``SUBSCRIBE`` with the
        key as the stream name (what the official SDK's ``user_data(listenKey)`` does) and
        delivered as ``{"stream": <key>, "data": ...}``; ``UNSUBSCRIBE`` and
        ``LIST_SUBSCRIPTIONS`` as on the market streams. An unknown key is acknowledged
        and delivers nothing."""
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        mine: dict[str, _Connection] = {}
        senders: set[asyncio.Task[None]] = set()
        try:
            async for message in ws:
                if message.type != web.WSMsgType.TEXT:
                    continue
                reply = self._subscription(message.data, ws, mine, senders)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(orjson.dumps(reply).decode())
        finally:
            for key, conn in mine.items():
                self._connections.get(key, set()).discard(conn)
                conn.queue.put_nowait(None)
            if senders:
                await asyncio.wait(senders)
        return ws

    def _subscription(
        self,
        text: str,
        ws: web.WebSocketResponse,
        mine: dict[str, _Connection],
        senders: set[asyncio.Task[None]],
    ) -> Json:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"code": 3, "msg": "Invalid JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("params", []), list):
            return {"code": 2, "msg": "Invalid request"}
        ident, method = request.get("id"), request.get("method")
        keys = [k for k in request.get("params", []) if isinstance(k, str)]
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(mine), "id": ident}
        if method == "UNSUBSCRIBE":
            for key in keys:
                conn = mine.pop(key, None)
                if conn is not None:
                    self._connections.get(key, set()).discard(conn)
                    conn.queue.put_nowait(None)
            return {"result": None, "id": ident}
        if method != "SUBSCRIBE":
            return {"code": 2, "msg": "Invalid request: unknown variant", "id": ident}
        for key in keys:
            record = self._keys.get(key)
            if key in mine or record is None or record.expires_ms <= self.now_ms():
                continue
            conn = _Connection(key, ws, combined=True, close_socket=False)
            mine[key] = conn
            self._connections.setdefault(key, set()).add(conn)
            sender = asyncio.create_task(self._send_loop(conn))
            senders.add(sender)
            self._tasks.add(sender)
            sender.add_done_callback(self._tasks.discard)
            sender.add_done_callback(senders.discard)
        return {"result": None, "id": ident}

    async def _send_loop(self, conn: _Connection) -> None:
        while True:
            event = await conn.queue.get()
            if event is None:
                await self._flush_held(conn)
                if conn.close_socket:
                    await conn.ws.close()
                return
            if not await self._deliver(conn, event):
                return

    async def _deliver(self, conn: _Connection, event: Json) -> bool:
        """Apply stream faults to one event; False when the connection was closed."""
        path = conn.key
        if event.get("e") != "listenKeyExpired":
            if self.faults.roll("stream_disconnect", path) is not None:
                self._connections.get(conn.key, set()).discard(conn)
                await conn.ws.close(code=1001, message=b"simulated disconnect")
                return False
            if self.faults.roll("stream_drop", path) is not None:
                return True
            delay = self.faults.roll("stream_delay", path)
            if delay is not None:
                await asyncio.sleep(param_ms(delay, "ms", 500.0) / 1000.0)
            if conn.held is None and self.faults.roll("stream_reorder", path) is not None:
                conn.held = event
                return True
        await self._send(conn, event)
        await self._flush_held(conn)
        return True

    async def _flush_held(self, conn: _Connection) -> None:
        held, conn.held = conn.held, None
        if held is not None:
            await self._send(conn, held)

    async def _send(self, conn: _Connection, event: Json) -> None:
        payload: Json = {"stream": conn.key, "data": event} if conn.combined else event
        if not conn.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(orjson.dumps(payload).decode())
