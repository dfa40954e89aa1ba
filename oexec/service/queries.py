"""Reads of orders through the daemon: one order, its trace, open orders, history.

Each waits for the venue answers still being stored after their reply (``settle.py``),
so a client never reads an older state than a reply it already has.
"""

from __future__ import annotations

from typing import Any

from oexec.errors import ErrorCode, NotFoundError, OexecError
from oexec.models import Order
from oexec.service.journal import Journal, build_trace
from oexec.service.ports import OrderStore
from oexec.service.settle import Settlement


class Queries:
    def __init__(
        self, *, store: OrderStore, settlement: Settlement, journal: Journal | None
    ) -> None:
        self.store = store
        self.settlement = settlement
        self.journal = journal

    async def lookup(self, order_id: str | None, request_id: str | None) -> Order:
        await self.settlement.persisted(order_id or None, request_id or None)
        if order_id:
            order = await self.store.get(order_id)
        elif request_id:
            order = await self.store.get_by_request_id(request_id)
        else:
            raise OexecError("order_id or request_id is required", code=ErrorCode.BAD_REQUEST)
        if order is None:
            raise NotFoundError(
                "no such order", details={"order_id": order_id, "request_id": request_id}
            )
        return order

    async def trace(self, order_id: str | None, request_id: str | None) -> dict[str, Any]:
        """The audit trail of one order (oexec.service.journal.build_trace)."""
        order = await self.lookup(order_id, request_id)
        return await build_trace(self.store, order, self.journal)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        await self.settlement.drain()
        return await self.store.open_orders(symbol)

    async def history(
        self,
        symbol: str | None,
        *,
        limit: int,
        start_ms: int | None,
        end_ms: int | None,
    ) -> list[Order]:
        await self.settlement.drain()
        return await self.store.history(symbol, limit=limit, start_ms=start_ms, end_ms=end_ms)
