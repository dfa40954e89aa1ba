"""An in-process venue: the second venue package (``[venue] name = "memory"``).

Why it exists: to prove that the core depends on the ports and the ``VenuePolicy``
alone. The service's contract tests (tests/service/test_venue_contract.py) run the same
pipeline, tracker and resolver against it and against Binance (the simulator) without a
line of ``oexec/service`` knowing which. It is also a quick venue for experiments.

The model is small on purpose: LIMIT orders rest until ``fill`` or a cancel; MARKET
orders fill at once at the mark price; every change is pushed on the user stream.
``fail_next_submit`` makes the next submit land and then answer with a given error
(an unknown outcome, as a timeout after the venue took it).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import attrs

from oexec.config import VenueConfig
from oexec.errors import OexecError, VenueOrderNotFoundError, VenueRejectedError
from oexec.models import (
    ExchangeInfo,
    OrderType,
    OrderUpdate,
    SymbolRules,
    VenueOrder,
    VenueOrderStatus,
    VenueTrade,
)
from oexec.models.account import AccountSettingChange, Balance, Position
from oexec.models.venue import AccountUpdate, StreamGap
from oexec.service.ports import RequestGate, UserStream, VenueKit, VenueOrderRequest, VenuePolicy

NAME = "memory"
POLICY = VenuePolicy(
    name=NAME,
    client_order_id_pattern=r"^[A-Za-z0-9._:/-]{1,64}$",
    not_found_grace_ms=0,  # no network, no read lag: not found means never placed
    all_symbols_open_orders_cost=1,
)
OPEN = (VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED)
ZERO = Decimal(0)

Event = OrderUpdate | AccountUpdate | StreamGap


def default_symbols() -> dict[str, SymbolRules]:
    rules = SymbolRules(
        symbol="BTCUSDT",
        base_asset="BTC",
        min_price=Decimal("0.1"),
        max_price=Decimal("1000000"),
        tick_size=Decimal("0.1"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("1000"),
        step_size=Decimal("0.001"),
        market_min_qty=Decimal("0.001"),
        market_max_qty=Decimal("120"),
        market_step_size=Decimal("0.001"),
        min_notional=Decimal("5"),
    )
    return {rules.symbol: rules}


def _now_ms() -> int:
    return int(time.time() * 1000)


class MemoryVenue:
    """The ``Venue`` port over a dict of orders."""

    name = NAME

    def __init__(self, *, gate: RequestGate | None = None) -> None:
        self.gate = gate
        self.symbols = default_symbols()
        self.marks: dict[str, Decimal] = dict.fromkeys(self.symbols, Decimal("50000"))
        self.orders: dict[str, VenueOrder] = {}  # client order id -> order
        self.trades: dict[str, list[VenueTrade]] = {}  # exchange order id -> trades
        self.submits = 0  # place_order calls that reached the venue
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._fail_next: OexecError | None = None
        self._streams: list[asyncio.Queue[Event]] = []

    # -- test and experiment controls -----------------------------------------------------
    def fail_next_submit(self, error: OexecError) -> None:
        """The next submit is taken by the venue, then answered with ``error``."""
        self._fail_next = error

    def fill(self, client_order_id: str, quantity: Decimal, price: Decimal | None = None) -> None:
        """Execute ``quantity`` of a resting order (its limit price unless ``price``)."""
        order = self.orders[client_order_id]
        self._execute(order, quantity, price or order.price)

    # -- the port -------------------------------------------------------------------------
    async def exchange_info(self) -> ExchangeInfo:
        await self._charge(weight=1)
        return ExchangeInfo(server_time=_now_ms(), symbols=dict(self.symbols))

    async def mark_price(self, symbol: str) -> Decimal:
        return self.marks[symbol]

    async def place_order(
        self, request: VenueOrderRequest, *, deadline_s: float | None = None
    ) -> VenueOrder:
        await self._charge(weight=0, orders=1, deadline_s=deadline_s)
        terms, coid = request.terms, request.client_order_id
        if coid in self.orders:
            raise VenueRejectedError("duplicate client order id")
        if terms.symbol not in self.symbols:
            raise VenueRejectedError(f"unknown symbol {terms.symbol}")
        self.submits += 1
        order = VenueOrder(
            symbol=terms.symbol,
            exchange_order_id=str(next(self._ids)),
            client_order_id=coid,
            status=VenueOrderStatus.NEW,
            side=terms.side,
            type=terms.type,
            quantity=terms.quantity,
            executed_quantity=ZERO,
            price=terms.price or ZERO,
            average_price=ZERO,
            cumulative_quote=ZERO,
            update_time=_now_ms(),
            time_in_force=terms.time_in_force,
            stop_price=terms.stop_price,
            reduce_only=terms.reduce_only,
            position_side=terms.position_side,
        )
        self._store(order, "NEW")
        if terms.type is OrderType.MARKET:
            self._execute(order, terms.quantity, self.marks[terms.symbol])
        failure, self._fail_next = self._fail_next, None
        if failure is not None:
            raise failure
        return self.orders[coid]

    async def query_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        await self._charge(weight=1)
        return self._find(client_order_id, order_id)

    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        await self._charge(weight=1)
        order = self._find(client_order_id, order_id)
        if order.status not in OPEN:
            raise VenueRejectedError("order is not open")
        return self._store(self._evolve(order, status=VenueOrderStatus.CANCELED), "CANCELED")

    async def cancel_all(self, symbol: str) -> None:
        await self._charge(weight=1)
        for order in list(self.orders.values()):
            if order.symbol == symbol and order.status in OPEN:
                self._store(self._evolve(order, status=VenueOrderStatus.CANCELED), "CANCELED")

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        await self._charge(weight=1)
        return [
            o
            for o in self.orders.values()
            if o.status in OPEN and (symbol is None or o.symbol == symbol)
        ]

    async def orders_since(
        self, symbol: str, *, start_ms: int, limit: int = 1000
    ) -> list[VenueOrder]:
        """Every order of ``symbol`` (this venue keeps no creation time: all of them)."""
        await self._charge(weight=5)
        return [o for o in self.orders.values() if o.symbol == symbol][-limit:]

    async def user_trades(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 500,
    ) -> list[VenueTrade]:
        await self._charge(weight=1)
        if order_id is not None:
            return list(self.trades.get(order_id, []))[:limit]
        rows = [
            t
            for trades in self.trades.values()
            for t in trades
            if t.symbol == symbol and (start_ms is None or t.time >= start_ms)
        ]
        return rows[:limit]

    async def close(self) -> None:
        return None

    # -- the account (AccountVenue): flat and empty, settings remembered --------------------
    async def position_risk(self, symbol: str | None = None) -> list[Position]:
        return []

    async def account_balances(self) -> list[Balance]:
        return []

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettingChange:
        return AccountSettingChange(symbol=symbol, leverage=leverage)

    async def set_margin_type(self, symbol: str, margin_type: str) -> AccountSettingChange:
        return AccountSettingChange(symbol=symbol, margin_type=margin_type)

    # -- the user stream --------------------------------------------------------------------
    def user_stream(self, on_state: Callable[[str], None]) -> UserStream:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._streams.append(queue)
        return MemoryUserStream(self, queue, on_state)

    def _drop_stream(self, queue: asyncio.Queue[Event]) -> None:
        if queue in self._streams:
            self._streams.remove(queue)

    # -- the model --------------------------------------------------------------------------
    async def _charge(
        self, *, weight: int, orders: int = 0, deadline_s: float | None = None
    ) -> None:
        if self.gate is not None:
            await self.gate.acquire(weight=weight, orders=orders, deadline_s=deadline_s)

    def _find(self, client_order_id: str | None, order_id: str | None) -> VenueOrder:
        if client_order_id is not None and client_order_id in self.orders:
            return self.orders[client_order_id]
        for order in self.orders.values():
            if order_id is not None and order.exchange_order_id == order_id:
                return order
        raise VenueOrderNotFoundError("no such order")

    @staticmethod
    def _evolve(order: VenueOrder, **changes: Any) -> VenueOrder:
        return attrs.evolve(order, update_time=_now_ms(), **changes)

    def _execute(self, order: VenueOrder, quantity: Decimal, price: Decimal) -> None:
        quantity = min(quantity, order.quantity - order.executed_quantity)
        if quantity <= 0:
            return
        executed = order.executed_quantity + quantity
        quote = order.cumulative_quote + quantity * price
        done = executed >= order.quantity
        filled = self._evolve(
            order,
            status=VenueOrderStatus.FILLED if done else VenueOrderStatus.PARTIALLY_FILLED,
            executed_quantity=executed,
            cumulative_quote=quote,
            average_price=quote / executed,
        )
        trade = VenueTrade(
            symbol=order.symbol,
            trade_id=next(self._trade_ids),
            exchange_order_id=order.exchange_order_id,
            client_order_id=order.client_order_id,
            side=order.side,
            price=price,
            quantity=quantity,
            commission=ZERO,
            commission_asset="USDT",
            is_maker=order.type is not OrderType.MARKET,
            realized_pnl=ZERO,
            time=filled.update_time,
        )
        self.trades.setdefault(order.exchange_order_id, []).append(trade)
        self._store(filled, "TRADE", trade)

    def _store(
        self, order: VenueOrder, execution: str, trade: VenueTrade | None = None
    ) -> VenueOrder:
        self.orders[order.client_order_id] = order
        update = OrderUpdate(order, execution, order.update_time, order.update_time, trade)
        for queue in self._streams:
            queue.put_nowait(update)
        return order


class MemoryUserStream:
    """The venue's pushes, in order; a StreamGap("connected") first, as a real stream."""

    def __init__(
        self,
        venue: MemoryVenue,
        queue: asyncio.Queue[Event],
        on_state: Callable[[str], None],
    ) -> None:
        self._venue = venue
        self._queue = queue
        self._on_state = on_state

    async def events(self) -> AsyncIterator[Event]:
        self._on_state("connected")
        yield StreamGap("connected", _now_ms())
        while True:
            yield await self._queue.get()

    async def close(self, release_key: bool = False) -> None:
        self._venue._drop_stream(self._queue)
        self._on_state("closed")


async def open_memory(
    config: VenueConfig, *, gate: RequestGate | None = None, observer: Any = None
) -> VenueKit:
    """The memory venue as a ``VenueKit`` (no dead-man switch, amends or batches: the
    core must do without them)."""
    venue = MemoryVenue(gate=gate)
    return VenueKit(venue=venue, policy=POLICY, user_stream=venue.user_stream, account=venue)


__all__ = ["POLICY", "MemoryUserStream", "MemoryVenue", "open_memory"]
