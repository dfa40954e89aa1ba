"""Accounts: wallet balances, positions, leverage and margin (cross margin, one asset).

Position maths is exact ``Decimal``; derived money (entry price, PnL, fees) is rounded to
8 decimals like the venue's balances.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs

from oexec.sim.engine.numbers import ZERO, money
from oexec.sim.engine.params import PositionSide, Side

DEFAULT_BALANCES: Mapping[str, Decimal] = {"USDT": Decimal("100000")}
MARGIN_ASSET = "USDT"


@attrs.define
class Position:
    """One position leg: signed amount (negative = short), entry price, realized PnL."""

    symbol: str
    side: PositionSide
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized: Decimal = ZERO
    update_time: int = 0

    def unrealized(self, mark: Decimal) -> Decimal:
        return money(self.amount * (mark - self.entry_price))


@attrs.define
class Account:
    """One trading account of the simulated venue."""

    account_id: str
    initial: dict[str, Decimal]
    default_leverage: int
    balances: dict[str, Decimal] = attrs.field(factory=dict)
    positions: dict[tuple[str, PositionSide], Position] = attrs.field(factory=dict)
    leverage: dict[str, int] = attrs.field(factory=dict)
    isolated: set[str] = attrs.field(factory=set)
    dual_side: bool = False
    update_time: int = 0

    def __attrs_post_init__(self) -> None:
        self.balances = dict(self.initial)

    @property
    def wallet(self) -> Decimal:
        return self.balances.get(MARGIN_ASSET, ZERO)

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, self.default_leverage)

    def position(self, symbol: str, side: PositionSide) -> Position:
        key = (symbol, side)
        if key not in self.positions:
            self.positions[key] = Position(symbol, side)
        return self.positions[key]

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.amount != 0]

    def apply_fill(
        self, symbol: str, side: PositionSide, order_side: Side, qty: Decimal, price: Decimal
    ) -> Decimal:
        """Move the position by one fill; returns the realized PnL it closed."""
        pos = self.position(symbol, side)
        delta = qty if order_side is Side.BUY else -qty
        pnl = ZERO
        if pos.amount == 0 or (pos.amount > 0) == (delta > 0):
            size = abs(pos.amount) + qty
            pos.entry_price = money((abs(pos.amount) * pos.entry_price + qty * price) / size)
        else:
            closed = min(abs(pos.amount), qty)
            direction = 1 if pos.amount > 0 else -1
            pnl = money(closed * (price - pos.entry_price) * direction)
            if qty > abs(pos.amount):
                pos.entry_price = price
        pos.amount += delta
        if pos.amount == 0:
            pos.entry_price = ZERO
        pos.realized += pnl
        self.balances[MARGIN_ASSET] = self.wallet + pnl
        return pnl

    def charge(self, fee: Decimal) -> None:
        self.balances[MARGIN_ASSET] = self.wallet - fee

    def unrealized(self, marks: Mapping[str, Decimal]) -> Decimal:
        return sum((p.unrealized(marks[p.symbol]) for p in self.open_positions()), ZERO)

    def position_margin(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Initial margin of open positions: |amount| × mark / leverage."""
        return sum(
            (
                money(abs(p.amount) * marks[p.symbol] / self.leverage_of(p.symbol))
                for p in self.open_positions()
            ),
            ZERO,
        )

    def available(self, marks: Mapping[str, Decimal], order_margin: Decimal) -> Decimal:
        """Wallet + unrealized PnL − position margin − open-order margin."""
        return self.wallet + self.unrealized(marks) - self.position_margin(marks) - order_margin


def opening_qty(
    account: Account, symbol: str, side: PositionSide, order_side: Side, qty: Decimal
) -> Decimal:
    """The part of an order that would open or grow exposure (the rest only reduces)."""
    if side is not PositionSide.BOTH:
        opens = (side is PositionSide.LONG) == (order_side is Side.BUY)
        return qty if opens else ZERO
    amount = account.position(symbol, side).amount
    reducing = -amount if order_side is Side.BUY else amount
    return qty if reducing <= 0 else max(ZERO, qty - reducing)
