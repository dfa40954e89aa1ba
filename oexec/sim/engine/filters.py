"""Symbol filter checks in the venue's order (§D.3, §H.2), as small pure functions."""

from __future__ import annotations

from decimal import Decimal

from oexec.sim.engine.errors import SimError
from oexec.sim.engine.numbers import fmt, fraction_digits
from oexec.sim.engine.params import OrderType, Side
from oexec.sim.engine.specs import SymbolSpec

_PRECISION = SimError(-1111, "Precision is over the maximum defined for this asset.")
#: Types whose quantity is checked against MARKET_LOT_SIZE instead of LOT_SIZE.
MARKET_LOT_TYPES = frozenset(
    {
        OrderType.MARKET,
        OrderType.STOP_MARKET,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TRAILING_STOP_MARKET,
    }
)


def check_price(spec: SymbolSpec, price: Decimal, *, stop: bool = False) -> None:
    """PRICE_FILTER: precision -1111, min -4013, max -4002 (stop -4007), tick -4014."""
    if fraction_digits(price) > spec.price_precision:
        raise _PRECISION
    if spec.min_price and price < spec.min_price:
        raise SimError(-4013, "Price less than min price.")
    if spec.max_price and price > spec.max_price:
        code = -4007 if stop else -4002
        raise SimError(code, "Price greater than max price.")
    if spec.tick_size and (price - spec.min_price) % spec.tick_size:
        raise SimError(-4014, "Price not increased by tick size.")


def check_quantity(spec: SymbolSpec, order_type: OrderType, qty: Decimal) -> None:
    """LOT_SIZE / MARKET_LOT_SIZE: precision -1111, min -4004, max -4005, step -4023."""
    if fraction_digits(qty) > spec.quantity_precision:
        raise _PRECISION
    market = order_type in MARKET_LOT_TYPES
    low = spec.market_min_qty if market else spec.min_qty
    high = spec.market_max_qty if market else spec.max_qty
    step = spec.market_step_size if market else spec.step_size
    if qty < low:
        raise SimError(-4004, "Quantity less than or equal to zero.")
    if high and qty > high:
        raise SimError(-4005, "Quantity greater than max quantity.")
    if step and (qty - low) % step:
        raise SimError(-4023, "Quantity not increased by step size.")


def check_percent_price(spec: SymbolSpec, side: Side, price: Decimal, mark: Decimal) -> None:
    """PERCENT_PRICE against the mark price: BUY cap -4016, SELL floor -4024."""
    if side is Side.BUY and price > mark * spec.multiplier_up:
        raise SimError(-4016, f"Limit price can't be higher than {fmt(mark * spec.multiplier_up)}.")
    if side is Side.SELL and price < mark * spec.multiplier_down:
        raise SimError(
            -4024, f"Limit price can't be lower than {fmt(mark * spec.multiplier_down)}."
        )


def check_notional(spec: SymbolSpec, price: Decimal, qty: Decimal, exempt: bool) -> None:
    """MIN_NOTIONAL -4164 (reduce-only and closePosition exempt)."""
    if not exempt and price * qty < spec.min_notional:
        raise SimError(
            -4164,
            f"Order's notional must be no smaller than {fmt(spec.min_notional)} "
            "(unless you choose reduce only).",
        )


def check_open_counts(spec: SymbolSpec, open_total: int, open_algo: int, algo: bool) -> None:
    """MAX_NUM_ORDERS -2025 (all open orders), MAX_NUM_ALGO_ORDERS -4045 (conditional)."""
    if open_total >= spec.max_num_orders:
        raise SimError(-2025, "Reach max open order limit.")
    if algo and open_algo >= spec.max_num_algo_orders:
        raise SimError(-4045, "Reach max stop order limit.")
