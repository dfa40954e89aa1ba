"""What the pre-trade rules need to know about the market and the account, kept in memory.

Mark prices are cached and refreshed in the background (a REST call per order would
double the latency); open-order counts follow the daemon's own writes (and are reseeded
from the store at start); positions come from the user stream's ACCOUNT_UPDATE. All of it
is advisory: the venue remains the judge, the rules only keep obviously doomed orders
from costing a round trip and an order-rate token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal

from oexec.models import Order, OrderTerms
from oexec.models.venue import AccountUpdate
from oexec.service.rules.context import MarketContext
from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.market")

MarkPriceSource = Callable[[str], Awaitable[Decimal]]


class MarketState:
    def __init__(
        self,
        mark_price_source: MarkPriceSource,
        *,
        refresh_s: float = 2.0,
        max_age_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = mark_price_source
        self._refresh_s = refresh_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._marks: dict[str, tuple[Decimal, float]] = {}
        self._open: Counter[str] = Counter()
        self._open_algo: Counter[str] = Counter()
        self._positions: dict[str, Decimal] = {}
        self._task: asyncio.Task[None] | None = None

    # -- mark prices ---------------------------------------------------------------------
    async def mark_price(self, symbol: str) -> Decimal | None:
        cached = self._marks.get(symbol)
        if cached is not None and self._clock() - cached[1] <= self._max_age_s:
            return cached[0]
        try:
            price = await self._source(symbol)
        except Exception as exc:  # advisory: the venue still checks PERCENT_PRICE
            log.warning("mark price for %s unavailable: %s", symbol, exc)
            return cached[0] if cached else None
        self._marks[symbol] = (price, self._clock())
        return price

    def set_mark_price(self, symbol: str, price: Decimal) -> None:
        self._marks[symbol] = (price, self._clock())

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            for symbol in list(self._marks):
                with contextlib.suppress(Exception):
                    self._marks[symbol] = (await self._source(symbol), self._clock())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    # -- open orders and positions -------------------------------------------------------
    def seed_open_orders(self, orders: list[Order]) -> None:
        self._open.clear()
        self._open_algo.clear()
        for order in orders:
            self._count(order, +1)

    def _count(self, order: Order, delta: int) -> None:
        counter = self._open_algo if order.type.is_conditional else self._open
        counter[order.symbol] += delta
        if counter[order.symbol] <= 0:
            del counter[order.symbol]

    def on_order_change(self, before: Order | None, after: Order) -> None:
        """OrderWriter listener: keep the open-order counts in step with stored changes."""
        was_open = before is not None and before.state.is_open
        if after.state.is_open and not was_open:
            self._count(after, +1)
        elif was_open and not after.state.is_open:
            self._count(after, -1)

    def on_account_update(self, update: AccountUpdate) -> None:
        for position in update.positions:
            self._positions[position.symbol] = position.amount

    def set_position(self, symbol: str, amount: Decimal) -> None:
        self._positions[symbol] = amount

    def open_orders(self, symbol: str) -> int:
        return self._open[symbol]

    async def context_for(self, terms: OrderTerms, now_ms: int) -> MarketContext:
        return MarketContext(
            mark_price=await self.mark_price(terms.symbol),
            open_orders=self._open[terms.symbol],
            open_algo_orders=self._open_algo[terms.symbol],
            position=self._positions.get(terms.symbol, Decimal(0)),
            now_ms=now_ms,
        )
