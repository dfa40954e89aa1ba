"""Fills: every trade of an order stored once, including the ones the stream never said.

The tracker hands each trade the stream delivers to ``record``; the writer stores it
with its event (one outbox step) and counts what this process recorded. Any order whose
filled quantity runs ahead of its recorded trades (a REST reply or a query said FILLED,
the stream's trade events were lost) gets its trades fetched a little later (``check``),
and its owed-fills mark in the store — set in the same step as the change that owed
them — is cleared only once they add up; ``load_owed`` picks the marks up after a
restart, so a crash between a reply saying FILLED and the trade fetch loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import Protocol, TypeVar

from oexec.errors import OexecError
from oexec.models import Fill, Order, VenueTrade
from oexec.service import bulk_reads
from oexec.service.ports import OrderStore, Venue
from oexec.service.writer import OrderWriter

log = logging.getLogger("oexec.tracker")
T = TypeVar("T")

FILL_CHECK_DELAY_S = 1.0  # let the stream deliver the trades before asking for them
FILL_RETRY_S = 2.0  # a fill check the venue could not answer is retried this much later
FILL_CHECK_ATTEMPTS = 30  # then it waits in the store for the next start
MAX_FILL_CHECKS = 10_000
RECOVERY_CONCURRENCY = 8
ZERO = Decimal(0)


class FillObserver(Protocol):
    def fill(self, fill: Fill) -> None: ...


async def _sum_bounded(work: Callable[[T], Awaitable[int]], items: Sequence[T]) -> int:
    """``sum(work(item))``, ``RECOVERY_CONCURRENCY`` at a time: each item costs a venue
    round trip or two (one by one, 40 differing orders after an outage took ~45 s to
    fold in); the rate limiter still paces them. A few workers share one iterator: a
    task per item up front held one task per fill check due (up to 10,000; RSS, issue 10)."""
    pending = iter(items)

    async def worker() -> int:
        return sum([await work(item) for item in pending])

    workers = min(RECOVERY_CONCURRENCY, len(items))
    return sum(await asyncio.gather(*(worker() for _ in range(workers))))


def _trade_id(trade: VenueTrade) -> int:
    return trade.trade_id


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


class FillKeeper:
    def __init__(
        self,
        store: OrderStore,
        venue: Venue,
        writer: OrderWriter,
        *,
        observer: FillObserver,
        on_fill: Callable[[Fill], None] | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.store = store
        self.venue = venue
        self.writer = writer
        self.observer = observer
        self.on_fill = on_fill
        self.now_ms = now_ms
        self.due: dict[str, float] = {}  # order id -> check not before (monotonic)
        self._attempts: dict[str, int] = {}  # order id -> checks that came up short
        self._targets: dict[str, Decimal] = {}  # order id -> filled quantity to cover
        writer.subscribe_owing(self._owed)

    async def record(self, order: Order, trade: VenueTrade) -> bool:
        """Store the trade once and publish its event (``OrderWriter.record_fill``); the
        metrics and the hook come after the send, off the fill event's path (issue 10)."""
        fill = fill_from_trade(order, trade)
        if not await self.writer.record_fill(fill):
            return False
        self.observer.fill(fill)
        if self.on_fill is not None:
            self.on_fill(fill)
        return True

    async def fetch(self, order: Order, exchange_order_id: str | None = None) -> int:
        """Record every trade of ``order`` the store lacks; returns how many were new."""
        order_ref = exchange_order_id or order.exchange_order_id
        if order_ref is None:
            return 0
        trades = await self.venue.user_trades(order.symbol, order_id=order_ref)
        return await self.record_all(order, trades)

    async def record_all(self, order: Order, trades: Iterable[VenueTrade]) -> int:
        """Record ``trades`` of ``order`` in trade-id order; returns how many were new."""
        new = 0
        for trade in sorted(trades, key=_trade_id):
            new += await self.record(order, trade)
        return new

    async def covers(self, order_id: str, quantity: Decimal) -> bool:
        """Whether the stored trades of ``order_id`` add up to ``quantity``."""
        recorded = sum((f.quantity for f in await self.store.fills(order_id)), ZERO)
        return recorded >= quantity

    async def record_in_bulk(self, orders: Sequence[Order]) -> int:
        """Read the trades of ``orders`` a request per symbol where that is cheaper than
        one per order (oexec/service/bulk_reads.py) and record them; returns how many
        were new. Orders it leaves short are fetched one by one by ``check``."""
        found = await bulk_reads.trades_by_order(self.venue, orders, self.now_ms())
        new = 0
        for order in orders:
            new += await self.record_all(order, found.get(order.exchange_order_id or "", ()))
        return new

    async def audit(self, order: Order) -> int:
        """Fetch the trades of ``order`` if its recorded ones fall short."""
        if await self._complete(order):
            return 0
        return await self.fetch(order)

    # -- fills the stream never delivered ----------------------------------------------------
    def _owed(self, after: Order) -> None:
        """Writer hook: ``after`` was stored owing trades (its fill grew past the trades
        stored then): check it shortly; a check finding them arrived by then only clears
        the mark."""
        if after.id in self.due or len(self.due) < MAX_FILL_CHECKS:
            self.due.setdefault(after.id, time.monotonic() + FILL_CHECK_DELAY_S)
            self._targets[after.id] = after.filled_quantity

    def hurry(self) -> None:
        """Every pending check is due now (the venue answers again after a gap)."""
        now = time.monotonic()
        for order_id, at in self.due.items():
            if at > now:
                self.due[order_id] = now

    async def load_owed(self) -> int:
        """Check, soon, every order the store marks as owing trades (after a restart)."""
        owed = await self.store.owed_fills()
        due = time.monotonic()
        for order_id in owed[:MAX_FILL_CHECKS]:
            self.due.setdefault(order_id, due)
        return len(owed)

    async def check(self, *, due_only: bool = True) -> int:
        """Fetch trades for orders whose filled quantity exceeds their recorded fills;
        clear an order's owed-fills mark once they add up. A few orders at a time."""
        now = time.monotonic()
        due = [oid for oid, at in self.due.items() if not due_only or at <= now]
        new = await self._bulk_first(due)
        return new + await _sum_bounded(self._check_of, due)

    async def _bulk_first(self, due: list[str]) -> int:
        """Many orders owing trades (after a gap): one trade read per symbol first."""
        if len(due) < bulk_reads.BULK_TRADES_MIN:
            return 0
        short = []
        for order_id in due:
            if self._covered(order_id):
                continue  # the stream's trades arrived: only the mark is left
            try:
                order = await self.store.get(order_id)
                if order is not None and not await self._complete(order):
                    short.append(order)
            except OexecError:
                return 0  # store away: the checks keep their turns
        return await self.record_in_bulk(short)

    async def _check_of(self, order_id: str) -> int:
        new = 0
        # the stream's trades may have arrived after the save that owed them: then only
        # the mark is left to clear (no store read of the order and its fills)
        covered = self._covered(order_id)
        try:
            order = None if covered else await self.store.get(order_id)
            complete = True
            if order is not None and not await self._complete(order):
                new = await self.fetch(order)
                complete = await self._complete(order)
            if complete:
                await self.store.settle_fills(order_id)
        except OexecError as exc:  # venue or store away: keep the check, try later
            self.due[order_id] = time.monotonic() + FILL_RETRY_S
            log.info("fill check of %s postponed: %s", order_id, exc.message)
            return new
        attempts = self._attempts.pop(order_id, 0) + 1
        if complete or attempts >= FILL_CHECK_ATTEMPTS:
            self._forget(order_id)
            if not complete:
                log.error(
                    "trades of %s still short after %d checks; left for the next start",
                    order_id,
                    attempts,
                )
        else:  # the venue's trade list lags its order status: ask again later
            self._attempts[order_id] = attempts
            self.due[order_id] = time.monotonic() + FILL_RETRY_S
        return new

    def _forget(self, order_id: str) -> None:
        self.due.pop(order_id, None)
        self._attempts.pop(order_id, None)
        self._targets.pop(order_id, None)

    def _covered(self, order_id: str) -> bool:
        """Whether the trades this process recorded cover the fill the check was owed for."""
        target = self._targets.get(order_id)
        return target is not None and self.writer.recorded_quantity(order_id) >= target

    async def _complete(self, order: Order) -> bool:
        return await self.covers(order.id, order.filled_quantity)
