"""Many orders' truth in one request per symbol, instead of one request per order.

Why. After a gap (a daemon restart, a venue outage, a stream reconnect) reconciliation
asks the venue about every order whose state it cannot trust, and fetches the trades of
every order that filled meanwhile. One by one that is a query (weight 1) per order and a
``userTrades`` (weight 5) per filled order: a full-size chaos run (1,500 orders, 12
clients) spent its whole weight budget on it after a venue outage and the daemon showed
orders NEW that the venue had FILLED for 55 s, waiting for budget. Per symbol the venue
answers both at once: every order created since a time (``Venue.orders_since``, Binance
``allOrders``, weight 5) and every trade since a time (``user_trades(start_ms=...)``,
weight 5), up to 1,000 rows each.

The bulk read is an optimisation only, never the judge: an order it does not show (too
old for the window, beyond the row limit, or not visible yet) is asked about on its own
exactly as before, and a trade list it cut short leaves the order short of its fills, so
the usual per-order fetch follows. Each function here is pure planning or a thin read;
the callers (``OrderTracker.recover``, ``FillKeeper.check``) fold the answers in.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from oexec.errors import OexecError
from oexec.models import Order, VenueOrder, VenueTrade
from oexec.service.ports import Venue

log = logging.getLogger("oexec.tracker")

#: A symbol's differing orders are read in one ``orders_since`` from this many on: one
#: per-order query weighs 1, the bulk read 5 (Binance), so below it the bulk costs more.
BULK_ORDERS_MIN = 6
#: A symbol's trades are read in one request from this many orders on (a per-order
#: ``userTrades`` weighs as much as the bulk one).
BULK_TRADES_MIN = 2
#: The most rows one bulk read returns (the venue's cap).
BULK_LIMIT = 1000
#: Our clocks and the venue's differ: the window opens this much before the oldest order.
CLOCK_SLACK_MS = 60_000
#: The venue serves at most a 7-day window; older orders are asked about one by one.
MAX_WINDOW_MS = 7 * 86_400_000 - CLOCK_SLACK_MS


def by_symbol(orders: Iterable[Order], at_least: int) -> dict[str, list[Order]]:
    """The orders of every symbol with at least ``at_least`` of them."""
    groups: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        groups[order.symbol].append(order)
    return {symbol: group for symbol, group in groups.items() if len(group) >= at_least}


def window_start(orders: Iterable[Order], now_ms: int) -> int | None:
    """Where a bulk read covering ``orders`` starts; None when it would span more than
    the venue's window (then they are read one by one)."""
    start = min(order.created_at for order in orders) - CLOCK_SLACK_MS
    return start if now_ms - start <= MAX_WINDOW_MS else None


async def venue_orders(venue: Venue, orders: Iterable[Order], now_ms: int) -> dict[str, VenueOrder]:
    """The venue's view of as many of ``orders`` as bulk reads show, by client order id.
    A symbol whose read fails is left out (its orders are then asked one by one)."""
    seen: dict[str, VenueOrder] = {}
    for symbol, group in by_symbol(orders, BULK_ORDERS_MIN).items():
        start = window_start(group, now_ms)
        if start is None:
            continue
        try:
            rows = await venue.orders_since(symbol, start_ms=start, limit=BULK_LIMIT)
        except OexecError as exc:
            log.info("bulk order read of %s failed (%s): one by one", symbol, exc.code)
            continue
        seen.update((row.client_order_id, row) for row in rows)
    return seen


async def trades_by_order(
    venue: Venue, orders: Iterable[Order], now_ms: int
) -> dict[str, list[VenueTrade]]:
    """The venue's trades of ``orders`` (those with an exchange order id), by exchange
    order id, from one read per symbol with enough of them; a failed read leaves its
    symbol out."""
    wanted = [order for order in orders if order.exchange_order_id is not None]
    trades: dict[str, list[VenueTrade]] = defaultdict(list)
    for symbol, group in by_symbol(wanted, BULK_TRADES_MIN).items():
        start = window_start(group, now_ms)
        if start is None:
            continue
        ids = {order.exchange_order_id for order in group}
        try:
            rows = await venue.user_trades(symbol, start_ms=start, limit=BULK_LIMIT)
        except OexecError as exc:
            log.info("bulk trade read of %s failed (%s): one by one", symbol, exc.code)
            continue
        for trade in rows:
            if trade.exchange_order_id in ids:
                trades[trade.exchange_order_id].append(trade)
    return dict(trades)
