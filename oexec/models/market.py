"""What the venue says about its markets: symbol filters and rate limits (exchangeInfo).

Parsed once at the adapter boundary into these records; validation rules read only
these, so they work the same for any venue and for static config overrides.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from oexec.models.enums import OrderType, TimeInForce


@attrs.frozen(slots=True)
class SymbolRules:
    """One symbol's trading rules. A zero limit disables that check (venue convention)."""

    symbol: str
    status: str = "TRADING"
    base_asset: str = ""
    quote_asset: str = "USDT"
    order_types: frozenset[OrderType] = frozenset(OrderType)
    time_in_force: frozenset[TimeInForce] = frozenset(TimeInForce)
    # PRICE_FILTER
    min_price: Decimal = Decimal(0)
    max_price: Decimal = Decimal(0)
    tick_size: Decimal = Decimal(0)
    # LOT_SIZE
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal = Decimal(0)
    step_size: Decimal = Decimal(0)
    # MARKET_LOT_SIZE
    market_min_qty: Decimal = Decimal(0)
    market_max_qty: Decimal = Decimal(0)
    market_step_size: Decimal = Decimal(0)
    # MIN_NOTIONAL
    min_notional: Decimal = Decimal(0)
    # PERCENT_PRICE
    multiplier_up: Decimal = Decimal(0)
    multiplier_down: Decimal = Decimal(0)
    # MAX_NUM_ORDERS / MAX_NUM_ALGO_ORDERS
    max_num_orders: int = 0
    max_num_algo_orders: int = 0
    trigger_protect: Decimal = Decimal(0)
    market_take_bound: Decimal = Decimal(0)
    price_precision: int = 8
    quantity_precision: int = 8


@attrs.frozen(slots=True)
class RateLimitRule:
    """One venue limiter: ``limit`` units of ``kind`` per ``interval_s`` seconds."""

    kind: str  # "REQUEST_WEIGHT" | "ORDERS"
    interval_s: int
    limit: int


@attrs.frozen(slots=True)
class ExchangeInfo:
    server_time: int
    symbols: dict[str, SymbolRules]
    rate_limits: tuple[RateLimitRule, ...] = ()
