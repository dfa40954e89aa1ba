"""The base of the core's decorators of the Venue port: every call passes to ``inner``.

``journal.JournalingVenue`` (every order request and answer journaled) and
``batch.BatchingVenue`` (single submits and cancels grouped into the venue's batch
calls) each change a few calls; they subclass this and override only those, so the rest
of the port cannot drift between them.
"""

from __future__ import annotations

from decimal import Decimal

from oexec.models import ExchangeInfo, VenueOrder, VenueTrade
from oexec.service.ports import Venue, VenueOrderRequest


class VenueWrapper:
    def __init__(self, inner: Venue) -> None:
        self.inner = inner
        self.name = inner.name

    async def exchange_info(self) -> ExchangeInfo:
        return await self.inner.exchange_info()

    async def mark_price(self, symbol: str) -> Decimal:
        return await self.inner.mark_price(symbol)

    async def place_order(
        self, request: VenueOrderRequest, *, deadline_s: float | None = None
    ) -> VenueOrder:
        return await self.inner.place_order(request, deadline_s=deadline_s)

    async def query_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        return await self.inner.query_order(
            symbol, client_order_id=client_order_id, order_id=order_id
        )

    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        return await self.inner.cancel_order(
            symbol, client_order_id=client_order_id, order_id=order_id
        )

    async def cancel_all(self, symbol: str) -> None:
        await self.inner.cancel_all(symbol)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return await self.inner.open_orders(symbol)

    async def orders_since(
        self, symbol: str, *, start_ms: int, limit: int = 1000
    ) -> list[VenueOrder]:
        return await self.inner.orders_since(symbol, start_ms=start_ms, limit=limit)

    async def user_trades(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 500,
    ) -> list[VenueTrade]:
        return await self.inner.user_trades(
            symbol, order_id=order_id, start_ms=start_ms, limit=limit
        )

    async def close(self) -> None:
        await self.inner.close()
