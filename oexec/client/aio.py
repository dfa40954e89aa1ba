"""Asyncio client: one DEALER socket, many requests in flight, correlated by ``id``.

A reader task resolves each request's future by the reply's ``id``. A request that
times out is sent again (same fields, so place_order keeps its request_id) under a new
``id`` that resolves the same future; whichever reply comes first wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import zmq
import zmq.asyncio

from oexec.client import requests as rq
from oexec.client import strategy as st
from oexec.client.curve import CurveKeys
from oexec.client.errors import ClientError, ClientTimeoutError
from oexec.client.subscriber import Subscriber
from oexec.errors import ErrorCode, OexecError
from oexec.models import Order, OrderType, Side, TimeInForce
from oexec.models.account import Balance, Position
from oexec.wire import ErrorReply, Reply, decode_reply, encode_request

log = logging.getLogger(__name__)

BUSY_BACKOFF_S = 0.05


class AsyncClient:
    """``async with AsyncClient(endpoint) as client: await client.place_order(...)``."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        context: zmq.asyncio.Context | None = None,
        curve: CurveKeys | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.timeout_s = timeout_s
        self.retries = retries
        self._context = context or zmq.asyncio.Context.instance()
        self._socket: zmq.asyncio.Socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-{id(self):x}"

    # --- transport ------------------------------------------------------------------------
    def _connect(self) -> zmq.asyncio.Socket:
        if self._socket is None:
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve is not None:
                self.curve.apply(sock)
            sock.connect(self.endpoint)
            self._socket = sock
            self._reader = asyncio.create_task(self._read(sock), name="oexec-client-reader")
        return self._socket

    async def _read(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            try:
                reply = decode_reply(frames[-1])
            except OexecError as exc:
                log.warning("unreadable reply ignored", extra={"error": exc.message})
                continue
            future = self._pending.get(str(reply.id))
            if future is not None and not future.done():
                future.set_result(reply)

    async def _attempt(
        self, future: asyncio.Future[Reply], op: str, fields: dict[str, Any], ids: list[str]
    ) -> bool:
        """Send once under a new id; True when ``future`` resolved within the timeout."""
        correlation_id = f"{self._prefix}-{next(self._ids)}"
        ids.append(correlation_id)
        self._pending[correlation_id] = future
        sock = self._connect()
        try:
            async with asyncio.timeout(self.timeout_s):
                await sock.send(encode_request(correlation_id, op, fields))
                await asyncio.shield(future)
        except TimeoutError:
            pass
        return future.done()

    async def call(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Send one op, with retries; returns the result map or raises its ClientError.

        A timed-out attempt's future stays listening, so its late reply still counts.
        """
        loop = asyncio.get_running_loop()
        ids: list[str] = []
        future: asyncio.Future[Reply] = loop.create_future()
        try:
            for attempt in range(self.retries + 1):
                if future.done():  # the previous attempt was answered BUSY
                    future = loop.create_future()
                if not await self._attempt(future, op, fields, ids):
                    continue
                reply = future.result()
                if _is_busy(reply) and attempt < self.retries:
                    await asyncio.sleep(BUSY_BACKOFF_S * (attempt + 1))
                    continue
                return rq.result_of(reply)
        finally:
            for correlation_id in ids:
                self._pending.pop(correlation_id, None)
        raise ClientTimeoutError(
            "CLIENT_TIMEOUT", f"no reply from {self.endpoint} after {self.retries + 1} tries"
        )

    def close_nowait(self) -> None:
        """Close without waiting (from synchronous code): the reader is cancelled, the
        socket closed, pending requests fail with CLOSED."""
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ClientError("CLOSED", "client closed"))
        self._pending.clear()
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ClientError("CLOSED", "client closed"))
        self._pending.clear()
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- ops ------------------------------------------------------------------------------
    async def place_order(
        self,
        *,
        symbol: str,
        side: Side | str,
        type: OrderType | str,
        quantity: rq.DecimalLike,
        price: rq.DecimalLike | None = None,
        time_in_force: TimeInForce | str | None = None,
        stop_price: rq.DecimalLike | None = None,
        reduce_only: bool = False,
        request_id: str | None = None,
        **options: Any,
    ) -> Order:
        """As Client.place_order."""
        fields = rq.place_order_fields(
            symbol=symbol,
            side=side,
            type=type,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force,
            stop_price=stop_price,
            reduce_only=reduce_only,
            request_id=request_id,
            options=options,
        )
        return rq.to_order(await self.call("place_order", fields))

    async def get_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order:
        return rq.to_order(await self.call("get_order", rq.lookup_fields(order_id, request_id)))

    async def trace(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        """The audit trail of one order (states, fills, journaled venue traffic)."""
        return dict(await self.call("trace", rq.lookup_fields(order_id, request_id)))

    async def cancel_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order:
        fields = rq.lookup_fields(order_id, request_id)
        return rq.to_order(await self.call("cancel_order", fields))

    async def cancel_all(self, symbol: str) -> list[Order]:
        return rq.to_orders(await self.call("cancel_all", {"symbol": symbol}))

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return rq.to_orders(await self.call("open_orders", {"symbol": symbol}))

    async def order_history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]:
        fields = rq.history_fields(symbol, limit, start_ms, end_ms)
        return rq.to_orders(await self.call("order_history", fields))

    async def health(self) -> dict[str, Any]:
        return await self.call("health", {})

    # --- events ---------------------------------------------------------------------------
    async def replay(
        self, from_seq: int, *, topics: Sequence[str] = (), limit: int = 500
    ) -> dict[str, Any]:
        """One page of published events with seq >= ``from_seq`` (docs/wire.md, "replay")."""
        fields: dict[str, Any] = {"from_seq": from_seq, "limit": limit}
        if topics:
            fields["topics"] = list(topics)
        return await self.call("replay", fields)

    def subscribe(
        self,
        endpoint: str,
        topics: Sequence[str] = (),
        *,
        from_seq: int | None = None,
        drop_repeats: bool = True,
    ) -> Subscriber:
        """A Subscriber on the daemon's PUB ``endpoint`` that heals its gaps with this
        client's ``replay`` op; with ``from_seq``, every event after it comes first."""
        from oexec.client.replay import DaemonReplay  # replay.py builds on this module

        return Subscriber(
            endpoint,
            topics,
            context=self._context,
            replay=DaemonReplay(self),
            from_seq=from_seq,
            curve=self.curve,
            drop_repeats=drop_repeats,
        )

    async def halt(self, cancel_all: bool = False) -> dict[str, Any]:
        return await self.call("halt", {"cancel_all": cancel_all})

    async def resume(self) -> dict[str, Any]:
        return await self.call("resume", {})

    # --- beyond one order (docs/wire.md: modify_order ... set_margin_type) -----------------
    async def modify_order(
        self,
        *,
        order_id: str | None = None,
        request_id: str | None = None,
        price: rq.DecimalLike | None = None,
        quantity: rq.DecimalLike | None = None,
    ) -> Order:
        """Amend a resting LIMIT order in place (same order id); price and/or quantity."""
        fields = st.modify_fields(order_id, request_id, price, quantity)
        return rq.to_order(await self.call("modify_order", fields))

    async def place_orders(self, orders: Sequence[Mapping[str, Any]]) -> list[Order | ClientError]:
        """Up to 50 orders, each a dict of place_order's keywords (its own request_id,
        generated when absent). One Order or one ClientError per element, in order."""
        return st.to_results(await self.call("place_orders", st.place_orders_fields(orders)))

    async def cancel_orders(
        self, *, order_ids: Sequence[str] = (), request_ids: Sequence[str] = ()
    ) -> list[Order | ClientError]:
        """Up to 50 orders by id (or by request id); one result per id, in order."""
        fields = st.cancel_orders_fields(order_ids, request_ids)
        return st.to_results(await self.call("cancel_orders", fields))

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """Open positions from the daemon's account view (no venue round trip)."""
        return st.to_positions(await self.call("positions", {"symbol": symbol}))

    async def balances(self) -> list[Balance]:
        """Balances per asset from the daemon's account view (no venue round trip)."""
        return st.to_balances(await self.call("balances", {}))

    async def set_leverage(self, symbol: str, leverage: int) -> dict[str, Any]:
        return await self.call("set_leverage", {"symbol": symbol, "leverage": leverage})

    async def set_margin_type(self, symbol: str, margin_type: str) -> dict[str, Any]:
        """``margin_type``: "cross" or "isolated"."""
        fields = {"symbol": symbol, "margin_type": margin_type}
        return await self.call("set_margin_type", fields)


def _is_busy(reply: Reply) -> bool:
    return isinstance(reply, ErrorReply) and reply.code == ErrorCode.BUSY
