"""Cancels: one order, or every order of a symbol, through the breaker (always let
through: cancelling reduces risk).

A cancel whose outcome is unknown (a timeout, or a retry after one) is resolved by
querying the order, never by assuming; the venue's answer is stored through the writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from oexec.errors import (
    ErrorCode,
    OexecError,
    VenueError,
    VenueOrderNotFoundError,
    VenueUnknownOutcomeError,
)
from oexec.models import Order, OrderState
from oexec.service.apply import apply_venue_order
from oexec.service.ports import OrderStore, Venue
from oexec.service.queries import Queries
from oexec.service.resolver import UnknownOutcomeResolver
from oexec.service.settle import Settlement
from oexec.service.stages import Breaker, PipelineSettings
from oexec.service.writer import OrderWriter


class Cancels:
    def __init__(
        self,
        *,
        store: OrderStore,
        venue: Venue,
        writer: OrderWriter,
        breaker: Breaker,
        resolver: UnknownOutcomeResolver,
        queries: Queries,
        settlement: Settlement,
        settings: PipelineSettings,
        now_ms: Callable[[], int],
    ) -> None:
        self.store = store
        self.venue = venue
        self.writer = writer
        self.breaker = breaker
        self.resolver = resolver
        self.queries = queries
        self.settlement = settlement
        self.settings = settings
        self.now_ms = now_ms

    async def cancel_order(self, order_id: str | None, request_id: str | None) -> Order:
        order = await self.queries.lookup(order_id, request_id)
        if order.is_terminal:
            return order
        symbol, client_id = order.symbol, order.client_order_id
        try:
            venue_order = await self.breaker.call(
                lambda: self.venue.cancel_order(symbol, client_order_id=client_id), bypass=True
            )
        except VenueUnknownOutcomeError:
            return await self._unknown_cancel(order)
        except VenueOrderNotFoundError:
            # Already closed, not visible yet, or an earlier attempt of this very cancel
            # landed and its answer was lost: ask.
            try:
                venue_order = await self.venue.query_order(symbol, client_order_id=client_id)
            except VenueOrderNotFoundError:
                if order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN):
                    raise OexecError(
                        "order not visible at the venue yet; its submit is being resolved",
                        code=ErrorCode.ORDER_NOT_CANCELABLE,
                        details={"order_id": order.id, "state": order.state.value},
                    ) from None
                # The venue showed it (the store has its answer): not-found now is the
                # venue's read-after-write lag, not "never existed". Keep asking.
                return await self._unknown_cancel(order)
            except VenueError:
                return await self._unknown_cancel(order)
        except VenueError as exc:
            if exc.details.get("after_unknown_attempt"):
                # a retry failed definitely, but an earlier attempt may have landed
                return await self._unknown_cancel(order)
            raise
        now = self.now_ms()
        stored, _ = await self.writer.update(
            order, lambda o: apply_venue_order(o, venue_order, now), reason="cancel"
        )
        return stored

    async def _unknown_cancel(self, order: Order) -> Order:
        """The cancel may or may not have landed: resolve it by query (with backoff)."""
        task = self.resolver.resolve_cancel_in_background(order)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.settings.inline_resolve_s)
        except TimeoutError:
            raise VenueUnknownOutcomeError(
                "cancel outcome unknown; resolving by query (get the order later)",
                details={"order_id": order.id, "client_order_id": order.client_order_id},
            ) from None

    async def cancel_all(self, symbol: str) -> list[Order]:
        await self.settlement.drain()
        open_orders = await self.store.open_orders(symbol)  # before: the stream may close them
        await self.breaker.call(lambda: self.venue.cancel_all(symbol), bypass=True)
        results = await asyncio.gather(
            *(self.refresh(order) for order in open_orders), return_exceptions=True
        )
        return [r for r in results if isinstance(r, Order)]

    async def refresh(self, order: Order, *, reason: str = "refresh") -> Order:
        """Fold the venue's current view of one order into the store (``reason``: its
        state-history entry)."""
        venue_order = await self.venue.query_order(
            order.symbol, client_order_id=order.client_order_id
        )
        now = self.now_ms()
        stored, _ = await self.writer.update(
            order, lambda o: apply_venue_order(o, venue_order, now), reason=reason
        )
        return stored
