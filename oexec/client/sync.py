"""Blocking client for strategy processes (docs/wire.md; "lazy pirate" over DEALER).

One request at a time. On a timeout the socket is dropped (discarding anything still
queued for the daemon) and the request is sent again on a fresh socket with the same
fields — for place_order the same request_id, so the daemon's idempotency returns the
first order instead of placing a second. BUSY replies are retried the same way.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import zmq

from oexec.client import requests as rq
from oexec.client import strategy as st
from oexec.client.curve import CurveKeys
from oexec.client.errors import ClientError, ClientTimeoutError, ProtocolError
from oexec.errors import ErrorCode, OexecError
from oexec.models import Order, OrderType, Side, TimeInForce
from oexec.models.account import Balance, Position
from oexec.wire import ErrorReply, Reply, decode_reply, encode_request

BUSY_BACKOFF_S = 0.05


class Client:
    """``Client("tcp://127.0.0.1:5555").place_order(symbol=..., ...) -> Order``.

    Raises a ClientError subclass per error family; ClientTimeoutError when no reply
    came after ``retries`` + 1 attempts of ``timeout_s`` each.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        curve: CurveKeys | None = None,
        on_retry: Callable[[int, int], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.timeout_s = timeout_s
        self.retries = retries
        #: called as (attempt that timed out, attempts in all) before the next one: a
        #: command line tool says what it is waiting for instead of hanging silently
        self.on_retry = on_retry
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket[bytes] | None = None
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-{id(self):x}"

    # --- transport ------------------------------------------------------------------------
    def _connect(self) -> zmq.Socket[bytes]:
        if self._socket is None:
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve is not None:
                self.curve.apply(sock)
            sock.connect(self.endpoint)
            self._socket = sock
        return self._socket

    def _reset(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _wait(self, sock: zmq.Socket[bytes], correlation_id: str) -> Reply | None:
        """The reply to ``correlation_id``, or None at the timeout. Stale replies skipped."""
        deadline = time.monotonic() + self.timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                break
            frames = sock.recv_multipart()
            try:
                reply = decode_reply(frames[-1])
            except OexecError as exc:
                raise ProtocolError("BAD_REPLY", exc.message) from None
            if reply.id == correlation_id:
                return reply
        return None

    def call(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Send one op, with retries; returns the result map or raises its ClientError."""
        for attempt in range(self.retries + 1):
            correlation_id = f"{self._prefix}-{next(self._ids)}"
            sock = self._connect()
            sock.send(encode_request(correlation_id, op, fields))
            reply = self._wait(sock, correlation_id)
            if reply is None:
                self._reset()
                if self.on_retry is not None and attempt < self.retries:
                    self.on_retry(attempt + 1, self.retries + 1)
                continue
            if _is_busy(reply) and attempt < self.retries:
                time.sleep(BUSY_BACKOFF_S * (attempt + 1))
                continue
            return rq.result_of(reply)
        raise ClientTimeoutError(
            "CLIENT_TIMEOUT", f"no reply from {self.endpoint} after {self.retries + 1} tries"
        )

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- ops ------------------------------------------------------------------------------
    def place_order(
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
        """Place one order. ``request_id`` defaults to a new uuid4 hex; keep it to retry.

        ``options``: position_side, working_type, callback_rate, activation_price,
        good_till_date, deadline_ms.
        """
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
        return rq.to_order(self.call("place_order", fields))

    def get_order(self, *, order_id: str | None = None, request_id: str | None = None) -> Order:
        return rq.to_order(self.call("get_order", rq.lookup_fields(order_id, request_id)))

    def trace(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        """The audit trail of one order (states, fills, journaled venue traffic)."""
        return dict(self.call("trace", rq.lookup_fields(order_id, request_id)))

    def cancel_order(self, *, order_id: str | None = None, request_id: str | None = None) -> Order:
        return rq.to_order(self.call("cancel_order", rq.lookup_fields(order_id, request_id)))

    def cancel_all(self, symbol: str) -> list[Order]:
        return rq.to_orders(self.call("cancel_all", {"symbol": symbol}))

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return rq.to_orders(self.call("open_orders", {"symbol": symbol}))

    def order_history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]:
        fields = rq.history_fields(symbol, limit, start_ms, end_ms)
        return rq.to_orders(self.call("order_history", fields))

    def health(self) -> dict[str, Any]:
        return self.call("health", {})

    def halt(self, cancel_all: bool = False) -> dict[str, Any]:
        return self.call("halt", {"cancel_all": cancel_all})

    def resume(self) -> dict[str, Any]:
        return self.call("resume", {})

    # --- beyond one order (docs/wire.md: modify_order ... set_margin_type) -----------------
    def modify_order(
        self,
        *,
        order_id: str | None = None,
        request_id: str | None = None,
        price: rq.DecimalLike | None = None,
        quantity: rq.DecimalLike | None = None,
    ) -> Order:
        """Amend a resting LIMIT order in place (same order id); price and/or quantity."""
        fields = st.modify_fields(order_id, request_id, price, quantity)
        return rq.to_order(self.call("modify_order", fields))

    def place_orders(self, orders: Sequence[Mapping[str, Any]]) -> list[Order | ClientError]:
        """Up to 50 orders, each a dict of place_order's keywords (its own request_id,
        generated when absent). One Order or one ClientError per element, in order."""
        return st.to_results(self.call("place_orders", st.place_orders_fields(orders)))

    def cancel_orders(
        self, *, order_ids: Sequence[str] = (), request_ids: Sequence[str] = ()
    ) -> list[Order | ClientError]:
        """Up to 50 orders by id (or by request id); one result per id, in order."""
        fields = st.cancel_orders_fields(order_ids, request_ids)
        return st.to_results(self.call("cancel_orders", fields))

    def positions(self, symbol: str | None = None) -> list[Position]:
        """Open positions from the daemon's account view (no venue round trip)."""
        return st.to_positions(self.call("positions", {"symbol": symbol}))

    def balances(self) -> list[Balance]:
        """Balances per asset from the daemon's account view (no venue round trip)."""
        return st.to_balances(self.call("balances", {}))

    def set_leverage(self, symbol: str, leverage: int) -> dict[str, Any]:
        return self.call("set_leverage", {"symbol": symbol, "leverage": leverage})

    def set_margin_type(self, symbol: str, margin_type: str) -> dict[str, Any]:
        """``margin_type``: "cross" or "isolated"."""
        fields = {"symbol": symbol, "margin_type": margin_type}
        return self.call("set_margin_type", fields)


def _is_busy(reply: Reply) -> bool:
    return isinstance(reply, ErrorReply) and reply.code == ErrorCode.BUSY
