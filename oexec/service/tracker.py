"""Follow every order to its end: user-data stream events, fills, and gap recovery.

The stream is the fast path; it is not trusted across gaps. After any (re)connect, and
on a timer while the stream is down, every order the store thinks is open is queried
and its trades fetched, so nothing that happened during the gap is missed. Fills are
applied once (the store dedupes by symbol + trade id) and each new one is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from oexec.errors import OexecError, VenueOrderNotFoundError
from oexec.models import Fill, Order, OrderUpdate, VenueTrade
from oexec.models.serde import fill_to_dict
from oexec.models.venue import AccountUpdate
from oexec.service.apply import apply_venue_order
from oexec.service.market import MarketState
from oexec.service.ports import OrderStore, Venue
from oexec.service.writer import OrderWriter

log = logging.getLogger("oexec.tracker")


def fill_from_trade(order: Order, trade: VenueTrade) -> Fill:
    return Fill(
        order_id=order.id,
        exchange_order_id=trade.exchange_order_id,
        client_order_id=order.client_order_id,
        symbol=trade.symbol,
        side=trade.side,
        trade_id=trade.trade_id,
        price=trade.price,
        quantity=trade.quantity,
        commission=trade.commission,
        commission_asset=trade.commission_asset,
        is_maker=trade.is_maker,
        realized_pnl=trade.realized_pnl,
        time=trade.time,
    )


class OrderTracker:
    def __init__(
        self,
        store: OrderStore,
        venue: Venue,
        writer: OrderWriter,
        market: MarketState,
        *,
        poll_interval_s: float = 2.0,
        on_fill: Callable[[Fill], None] | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.store = store
        self.venue = venue
        self.writer = writer
        self.market = market
        self.poll_interval_s = poll_interval_s
        self.on_fill = on_fill
        self.now_ms = now_ms
        self.stream_up = False
        self.last_event_ms: int | None = None
        self.recoveries = 0

    # -- events ----------------------------------------------------------------------------
    async def handle(self, event: Any) -> None:
        if isinstance(event, OrderUpdate):
            await self.on_order_update(event)
        elif isinstance(event, AccountUpdate):
            self.market.on_account_update(event)
        else:  # a (re)connect marker from the stream: recover what the gap hid
            self.stream_up = True
            await self.recover()

    async def on_order_update(self, update: OrderUpdate) -> None:
        self.last_event_ms = update.event_time
        order = await self.store.get_by_client_order_id(update.order.client_order_id)
        if order is None:
            log.info("stream event for an order this daemon does not know: %s", update.order)
            return
        if update.trade is not None:
            await self.record_fill(order, update.trade)
        now = self.now_ms()
        await self.writer.update(
            order, lambda o: apply_venue_order(o, update.order, now), reason="user stream"
        )

    async def record_fill(self, order: Order, trade: VenueTrade) -> bool:
        fill = fill_from_trade(order, trade)
        if not await self.store.add_fill(fill):
            return False
        if self.on_fill is not None:
            self.on_fill(fill)
        await self.writer.events.publish("fill", {"fill": fill_to_dict(fill)})
        return True

    # -- gap recovery ----------------------------------------------------------------------
    async def recover(self) -> int:
        """Fold the venue's truth for every open order into the store; returns changes."""
        self.recoveries += 1
        changed = 0
        for order in await self.store.open_orders(None):
            with contextlib.suppress(OexecError):
                changed += await self.refresh(order)
        return changed

    async def refresh(self, order: Order) -> int:
        try:
            venue_order = await self.venue.query_order(
                order.symbol, client_order_id=order.client_order_id
            )
        except VenueOrderNotFoundError:
            return 0  # the resolver owns orders the venue has not shown yet
        if venue_order.executed_quantity > 0:
            trades = await self.venue.user_trades(
                order.symbol, order_id=venue_order.exchange_order_id
            )
            for trade in trades:
                await self.record_fill(order, trade)
        now = self.now_ms()
        _, changed = await self.writer.update(
            order, lambda o: apply_venue_order(o, venue_order, now), reason="recovery"
        )
        return int(changed)

    async def run(self, events: Any) -> None:
        """Consume a UserStream's event iterator until cancelled."""
        async for event in events:
            try:
                await self.handle(event)
            except OexecError as exc:
                log.warning("tracker could not apply %s: %s", type(event).__name__, exc)

    async def poll_while_down(self) -> None:
        """While the stream is down, poll so fills still arrive (slower)."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if not self.stream_up:
                with contextlib.suppress(OexecError):
                    await self.recover()
