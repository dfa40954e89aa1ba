"""The venue's symbol filters as rules (exchangeInfo: status, types, LOT_SIZE, PRICE_FILTER …).

Each class mirrors one venue check (the reference venue's filters, §D.3) so a doomed order is
refused locally with a code naming the filter instead of costing a round trip and an
order-rate token. Zero limits are disabled, as on the venue. Price-dependent checks
(MIN_NOTIONAL for MARKET, PERCENT_PRICE) defer to the venue when the mark price is
unknown: they exist to save round trips, not to guard the account (risk.py does that).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from oexec.errors import ErrorCode
from oexec.models import OrderTerms, SymbolRules
from oexec.models.enums import OrderType, Side
from oexec.service.rules.base import (
    ZERO,
    below,
    exceeds,
    fail,
    multiply,
    on_grid,
    reference_price,
)
from oexec.service.rules.context import MarketContext

TRADING = "TRADING"
#: Types that rest at a limit price and so take a time in force (venue §C.3).
TIME_IN_FORCE_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT})
#: Types for which the venue insists on one.
TIME_IN_FORCE_REQUIRED = frozenset({OrderType.LIMIT})
#: Types whose quantity the venue checks against MARKET_LOT_SIZE.
MARKET_LOT_TYPES = frozenset(
    {
        OrderType.MARKET,
        OrderType.STOP_MARKET,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TRAILING_STOP_MARKET,
    }
)


class SymbolTradable:
    """Only a symbol in status TRADING accepts orders (-1122 / -4140 otherwise)."""

    name: ClassVar[str] = "symbol_tradable"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        if rules.status != TRADING:
            fail(
                self.name,
                ErrorCode.SYMBOL_NOT_TRADING,
                "symbol",
                rules.status,
                TRADING,
                f"{terms.symbol} is {rules.status}, not {TRADING}",
            )


class OrderTypeAllowed:
    """The type is listed for the symbol; a time in force is present exactly when the type
    takes one (required for LIMIT) and is listed for the symbol."""

    name: ClassVar[str] = "order_type"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        kind, tif = terms.type, terms.time_in_force
        if kind not in rules.order_types:
            allowed = ",".join(sorted(t.value for t in rules.order_types))
            fail(
                self.name,
                ErrorCode.ORDER_TYPE_NOT_ALLOWED,
                "type",
                kind,
                allowed,
                f"order type {kind.value} is not allowed on {terms.symbol}",
            )
        if tif is None:
            if kind in TIME_IN_FORCE_REQUIRED:
                fail(
                    self.name,
                    ErrorCode.TIME_IN_FORCE_REQUIRED,
                    "time_in_force",
                    None,
                    "required",
                    f"{kind.value} orders need a time in force",
                )
            return
        if kind not in TIME_IN_FORCE_TYPES:
            fail(
                self.name,
                ErrorCode.TIME_IN_FORCE_NOT_ALLOWED,
                "time_in_force",
                tif,
                "none",
                f"{kind.value} orders take no time in force",
            )
        if tif not in rules.time_in_force:
            allowed = ",".join(sorted(t.value for t in rules.time_in_force))
            fail(
                self.name,
                ErrorCode.TIME_IN_FORCE_NOT_ALLOWED,
                "time_in_force",
                tif,
                allowed,
                f"time in force {tif.value} is not allowed on {terms.symbol}",
            )


def _lot(terms: OrderTerms, rules: SymbolRules) -> tuple[str, Decimal, Decimal, Decimal]:
    """(filter name, min, max, step): MARKET_LOT_SIZE for types that execute at market
    (MARKET and the conditional market types) when the venue lists it."""
    market = (rules.market_min_qty, rules.market_max_qty, rules.market_step_size)
    if terms.type in MARKET_LOT_TYPES and any(market):
        return ("MARKET_LOT_SIZE", *market)
    return ("LOT_SIZE", rules.min_qty, rules.max_qty, rules.step_size)


class QuantityFilter:
    """LOT_SIZE (MARKET_LOT_SIZE for market types): min <= qty <= max, on the step grid."""

    name: ClassVar[str] = "quantity"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        qty = terms.quantity
        lot, minimum, maximum, step = _lot(terms, rules)
        if qty <= ZERO or below(qty, minimum):
            fail(
                self.name,
                ErrorCode.QTY_BELOW_MIN,
                "quantity",
                qty,
                minimum,
                f"quantity {qty} is below {lot} minimum {minimum}",
            )
        if exceeds(qty, maximum):
            fail(
                self.name,
                ErrorCode.QTY_ABOVE_MAX,
                "quantity",
                qty,
                maximum,
                f"quantity {qty} is above {lot} maximum {maximum}",
            )
        if not on_grid(qty, step, minimum):
            fail(
                self.name,
                ErrorCode.QTY_STEP,
                "quantity",
                qty,
                step,
                f"quantity {qty} is not a multiple of {lot} step {step}",
            )


class PriceFilter:
    """PRICE_FILTER on price, stop price and activation price: min, max and tick grid.

    Also the price's presence: required for LIMIT/STOP/TAKE_PROFIT, refused otherwise.
    """

    name: ClassVar[str] = "price"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        kind = terms.type
        if kind.needs_price and terms.price is None:
            fail(
                self.name,
                ErrorCode.PRICE_REQUIRED,
                "price",
                None,
                "required",
                f"{kind.value} orders need a price",
            )
        if not kind.needs_price and terms.price is not None:
            fail(
                self.name,
                ErrorCode.PRICE_NOT_ALLOWED,
                "price",
                terms.price,
                "none",
                f"{kind.value} orders take no price",
            )
        for field, value in (
            ("price", terms.price),
            ("stop_price", terms.stop_price),
            ("activation_price", terms.activation_price),
        ):
            if value is not None:
                self._check_one(field, value, rules)

    def _check_one(self, field: str, price: Decimal, rules: SymbolRules) -> None:
        if price <= ZERO or below(price, rules.min_price):
            fail(
                self.name,
                ErrorCode.PRICE_BELOW_MIN,
                field,
                price,
                rules.min_price,
                f"{field} {price} is below the minimum {rules.min_price}",
            )
        if exceeds(price, rules.max_price):
            fail(
                self.name,
                ErrorCode.PRICE_ABOVE_MAX,
                field,
                price,
                rules.max_price,
                f"{field} {price} is above the maximum {rules.max_price}",
            )
        if not on_grid(price, rules.tick_size, rules.min_price):
            fail(
                self.name,
                ErrorCode.PRICE_TICK,
                field,
                price,
                rules.tick_size,
                f"{field} {price} is not on the tick grid {rules.tick_size}",
            )


class MinNotional:
    """MIN_NOTIONAL: quantity × price >= notional (mark price for MARKET); reduce-only exempt."""

    name: ClassVar[str] = "min_notional"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        if rules.min_notional <= ZERO or terms.reduce_only:
            return
        price = reference_price(terms, ctx.mark_price)
        if price is None:
            return  # no price known: the venue judges
        notional = multiply(terms.quantity, price)
        if notional < rules.min_notional:
            fail(
                self.name,
                ErrorCode.MIN_NOTIONAL,
                "notional",
                notional,
                rules.min_notional,
                f"notional {notional} is below the minimum {rules.min_notional}",
            )


class PercentPrice:
    """PERCENT_PRICE: BUY price <= mark × multiplierUp, SELL price >= mark × multiplierDown."""

    name: ClassVar[str] = "percent_price"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        price, mark = terms.price, ctx.mark_price
        if price is None or mark is None:
            return
        if terms.side is Side.BUY:
            cap = multiply(mark, rules.multiplier_up)
            if rules.multiplier_up > ZERO and price > cap:
                fail(
                    self.name,
                    ErrorCode.PERCENT_PRICE_ABOVE,
                    "price",
                    price,
                    cap,
                    f"buy price {price} is above mark {mark} × {rules.multiplier_up}",
                )
        else:
            floor = multiply(mark, rules.multiplier_down)
            if rules.multiplier_down > ZERO and price < floor:
                fail(
                    self.name,
                    ErrorCode.PERCENT_PRICE_BELOW,
                    "price",
                    price,
                    floor,
                    f"sell price {price} is below mark {mark} × {rules.multiplier_down}",
                )


class MaxNumOrders:
    """MAX_NUM_ORDERS (plain + conditional open orders), MAX_NUM_ALGO_ORDERS (conditional)."""

    name: ClassVar[str] = "max_num_orders"

    def check(self, terms: OrderTerms, rules: SymbolRules, ctx: MarketContext) -> None:
        total = ctx.open_orders + ctx.open_algo_orders
        if rules.max_num_orders > 0 and total >= rules.max_num_orders:
            fail(
                self.name,
                ErrorCode.MAX_NUM_ORDERS,
                "open_orders",
                total,
                rules.max_num_orders,
                f"{total} open orders on {terms.symbol}: limit reached",
            )
        if (
            terms.type.is_conditional
            and rules.max_num_algo_orders > 0
            and ctx.open_algo_orders >= rules.max_num_algo_orders
        ):
            fail(
                self.name,
                ErrorCode.MAX_NUM_ALGO_ORDERS,
                "open_algo_orders",
                ctx.open_algo_orders,
                rules.max_num_algo_orders,
                f"{ctx.open_algo_orders} open conditional orders on {terms.symbol}",
            )
