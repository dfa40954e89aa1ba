"""A small in-memory OrderService for wire-level tests, examples and client demos.

It keeps orders in dicts, honours request_id idempotency, and can be made to block
(``gate``) or fail (``fail_with``) so front-end behaviour under load and error is
testable. It talks to no venue; it is not the daemon's pipeline.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from oexec.errors import ErrorCode, NotFoundError, OexecError
from oexec.models import Order, OrderIntent, OrderState


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class InMemoryOrderService:
    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.by_request: dict[str, str] = {}
        self.intents: dict[str, OrderIntent] = {}
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None  # when set: every call waits for it
        self.fail_with: BaseException | None = None  # raised by every call
        self.halted = False
        self.entered = asyncio.Event()  # set once any call has started
        self._ids = itertools.count(1)

    async def _enter(self, op: str) -> None:
        self.calls.append(op)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with

    async def replay(
        self, from_seq: int, *, topics: Sequence[str] = (), limit: int = 500
    ) -> dict[str, Any]:
        await self._enter("replay")
        raise OexecError("no event log in memory", code=ErrorCode.REPLAY_UNAVAILABLE)

    async def place_order(self, intent: OrderIntent) -> Order:
        await self._enter("place_order")
        existing = self.by_request.get(intent.request_id)
        if existing is not None:
            if self.intents[existing] != intent:
                raise OexecError(
                    "request_id reused for another order",
                    code=ErrorCode.DUPLICATE_REQUEST_MISMATCH,
                )
            return self.orders[existing]
        now = _now_ms()
        order = Order.from_terms(
            intent.terms,
            id=f"o{next(self._ids)}",
            request_id=intent.request_id,
            client_order_id=f"x-{intent.request_id}"[:36],
            state=OrderState.NEW,
            created_at=now,
            updated_at=now,
            exchange_order_id=str(1000 + len(self.orders)),
            version=1,
        )
        self.orders[order.id] = order
        self.by_request[intent.request_id] = order.id
        self.intents[order.id] = intent
        return order

    def _find(self, order_id: str | None, request_id: str | None) -> Order:
        if order_id is None and request_id is not None:
            order_id = self.by_request.get(request_id)
        order = self.orders.get(order_id or "")
        if order is None:
            raise NotFoundError("no such order", details={"order_id": order_id})
        return order

    async def get_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order:
        await self._enter("get_order")
        return self._find(order_id, request_id)

    async def trace(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        await self._enter("trace")
        order = self._find(order_id, request_id)
        return {"order_id": order.id, "request_id": order.request_id, "journal": []}

    def _cancel(self, order: Order) -> Order:
        if order.is_terminal:
            raise OexecError("order is final", code=ErrorCode.ORDER_NOT_CANCELABLE)
        canceled = attrs.evolve(
            order, state=OrderState.CANCELED, updated_at=_now_ms(), version=order.version + 1
        )
        self.orders[order.id] = canceled
        return canceled

    async def cancel_order(
        self, *, order_id: str | None = None, request_id: str | None = None
    ) -> Order:
        await self._enter("cancel_order")
        return self._cancel(self._find(order_id, request_id))

    async def cancel_all(self, symbol: str) -> list[Order]:
        await self._enter("cancel_all")
        return [self._cancel(o) for o in list(self.orders.values()) if _open_in(o, symbol)]

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        await self._enter("open_orders")
        return [o for o in self.orders.values() if _open_in(o, symbol)]

    async def order_history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]:
        await self._enter("order_history")
        orders = [
            o
            for o in self.orders.values()
            if (symbol is None or o.symbol == symbol)
            and (start_ms is None or o.created_at >= start_ms)
            and (end_ms is None or o.created_at <= end_ms)
        ]
        orders.sort(key=lambda o: (o.created_at, o.id), reverse=True)
        return orders[:limit]

    async def health(self) -> dict[str, Any]:
        await self._enter("health")
        return {"status": "halted" if self.halted else "ok", "orders": len(self.orders)}

    async def halt(self, *, cancel_all: bool = False) -> dict[str, Any]:
        await self._enter("halt")
        self.halted = True
        canceled = [
            self._cancel(o) for o in list(self.orders.values()) if cancel_all and _open_in(o, None)
        ]
        return {"halted": True, "canceled": len(canceled)}

    async def resume(self) -> dict[str, Any]:
        await self._enter("resume")
        self.halted = False
        return {"halted": False}

    async def modify_order(
        self,
        *,
        order_id: str | None = None,
        request_id: str | None = None,
        price: Decimal | None = None,
        quantity: Decimal | None = None,
    ) -> Order:
        """In place, as the venue's amend: same id, new price and/or quantity."""
        await self._enter("modify_order")
        order = self._find(order_id, request_id)
        if order.is_terminal:
            raise OexecError("order is closed", code=ErrorCode.ORDER_NOT_AMENDABLE)
        amended = attrs.evolve(
            order,
            price=order.price if price is None else price,
            quantity=order.quantity if quantity is None else quantity,
            updated_at=_now_ms(),
            version=order.version + 1,
        )
        self.orders[order.id] = amended
        return amended


def _open_in(order: Order, symbol: str | None) -> bool:
    return order.state.is_open and (symbol is None or order.symbol == symbol)
