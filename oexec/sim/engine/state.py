"""The engine's mutable state: markets, accounts, orders, id counters and subscribers.

One ``State`` is shared by the engine's modules; the ``Exchange`` facade owns it. Keeping
it a plain record (not a god object) lets each rule module be a set of small functions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

import attrs

from oexec.sim.engine.accounts import Account
from oexec.sim.engine.errors import SimError
from oexec.sim.engine.numbers import ZERO
from oexec.sim.engine.orders import Order
from oexec.sim.engine.params import OrderType, Side
from oexec.sim.engine.specs import SymbolSpec

if TYPE_CHECKING:
    from oexec.sim.engine.algo import AlgoOrder
    from oexec.sim.engine.income import Income
    from oexec.sim.engine.tape import Tape

Json = dict[str, Any]
Callback = Callable[[Json], None]


@attrs.define
class Market:
    """Prices and 24 h statistics of one symbol."""

    spec: SymbolSpec
    liquidity: Decimal
    last: Decimal
    mark: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    update_id: int = 1
    time: int = 0

    def on_grid(self, price: Decimal, up: bool) -> Decimal:
        """Round ``price`` to the tick grid, up or down."""
        tick = self.spec.tick_size
        steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
        return steps * tick

    def move(self, last: Decimal, mark: Decimal, now: int) -> None:
        self.last, self.mark, self.time = last, mark, now
        self.high, self.low = max(self.high, last), min(self.low, last)
        self.update_id += 1


@attrs.define
class Fees:
    maker: Decimal
    taker: Decimal


@attrs.define
class State:
    """Everything the venue knows; reset() rebuilds it from the constructor arguments."""

    specs: dict[str, SymbolSpec]
    markets: dict[str, Market]
    fees: Fees
    now_ms: Callable[[], int]
    rng: random.Random
    volatility: Decimal
    default_leverage: int
    accounts: dict[str, Account] = attrs.field(factory=dict)
    orders: dict[int, Order] = attrs.field(factory=dict)
    #: Orders that were open when last looked at (pruned lazily): scans for open orders
    #: cost the number of open orders, not of every order ever placed (bench, issue 10).
    live: dict[int, Order] = attrs.field(factory=dict)
    algos: dict[int, AlgoOrder] = attrs.field(factory=dict)
    subscribers: dict[str, list[Callback]] = attrs.field(factory=dict)
    countdowns: dict[tuple[str, str], int] = attrs.field(factory=dict)
    next_order_id: int = 1_000_000
    next_trade_id: int = 5_000_000
    next_algo_id: int = 9_000_000
    next_seq: int = 0
    accepted: int = 0
    rejected: int = 0
    trades: int = 0
    #: Public record per symbol (market trades, mark samples) for klines and trade lists.
    tapes: dict[str, Tape] = attrs.field(factory=dict)
    tape_rng: random.Random = attrs.field(factory=random.Random)
    income: list[Income] = attrs.field(factory=list)
    next_tran_id: int = 7_000_000
    funding_history: list[Json] = attrs.field(factory=list)
    funding_interval_ms: int = 8 * 3_600_000
    funding_rate: Decimal = Decimal("0.0001")
    next_funding_ms: int = 0
    #: Public market listeners (the market streams): called with (symbol, trade, moved).
    market_listeners: list[Callable[[str, Any, bool], None]] = attrs.field(factory=list)

    def spec(self, symbol: str) -> SymbolSpec:
        """The symbol's spec, or -1121."""
        spec = self.specs.get(symbol)
        if spec is None:
            raise SimError(-1121, "Invalid symbol.")
        return spec

    def account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise SimError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return account

    def marks(self) -> Mapping[str, Decimal]:
        return {symbol: market.mark for symbol, market in self.markets.items()}

    def emit(self, account_id: str, event: Json) -> None:
        for callback in list(self.subscribers.get(account_id, ())):
            callback(event)

    def market_trade(self, symbol: str, trade: Any, moved: bool) -> None:
        """Tell the market listeners about a public trade (``moved``: the last price moved)."""
        for listener in list(self.market_listeners):
            listener(symbol, trade, moved)

    def new_order_id(self) -> int:
        self.next_order_id += 1
        return self.next_order_id

    def new_trade_id(self) -> int:
        self.next_trade_id += 1
        return self.next_trade_id

    def new_algo_id(self) -> int:
        self.next_algo_id += 1
        return self.next_algo_id

    def new_seq(self) -> int:
        self.next_seq += 1
        return self.next_seq

    def add_order(self, order: Order) -> None:
        """Record a newly accepted order (the only way orders enter the state)."""
        self.orders[order.order_id] = order
        self.live[order.order_id] = order

    def live_orders(self) -> list[Order]:
        """Every open order, in acceptance order; forgets the ones closed since last time."""
        closed = [order_id for order_id, order in self.live.items() if not order.is_open]
        for order_id in closed:
            del self.live[order_id]
        return list(self.live.values())

    def open_orders(self, account_id: str, symbol: str | None = None) -> list[Order]:
        return [
            order
            for order in self.live_orders()
            if order.account_id == account_id and (symbol is None or order.symbol == symbol)
        ]

    def order_notional(self, account_id: str, symbol: str) -> tuple[Decimal, Decimal]:
        """Open (bids, asks) notional of resting orders: the ``b``/``a`` event fields."""
        bids = asks = ZERO
        for order in self.open_orders(account_id, symbol):
            if order.type is not OrderType.LIMIT:
                continue
            value = order.remaining * order.price
            if order.side is Side.BUY:
                bids += value
            else:
                asks += value
        return bids, asks

    def order_margin(self, account_id: str) -> Decimal:
        """Initial margin reserved by open, non-reduce-only orders."""
        account = self.account(account_id)
        total = ZERO
        for order in self.open_orders(account_id):
            if order.reduce_only or order.close_position:
                continue
            price = order.price or order.stop_price or self.markets[order.symbol].mark
            total += order.remaining * price / account.leverage_of(order.symbol)
        return total


def build_markets(symbols: Sequence[SymbolSpec], liquidity: Decimal, now: int) -> dict[str, Market]:
    return {
        spec.symbol: Market(
            spec=spec,
            liquidity=spec.liquidity_per_level or liquidity,
            last=spec.initial_price,
            mark=spec.initial_price,
            open=spec.initial_price,
            high=spec.initial_price,
            low=spec.initial_price,
            time=now,
        )
        for spec in symbols
    }
