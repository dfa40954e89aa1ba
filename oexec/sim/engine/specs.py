"""Symbol specifications: the filters and defaults of each simulated contract.

Values follow reference §D.4 (captured live payloads); they are data, not logic, so tests
and the simulator's config can build their own ``SymbolSpec`` without touching the engine.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from oexec.sim.engine.numbers import plain

D = Decimal
_UP = D("1.0500")
_DOWN = D("0.9500")
_TRIGGER_PROTECT = D("0.0500")
_TAKE_BOUND = D("0.05")
_LIQ_FEE = D("0.012500")


@attrs.frozen
class SymbolSpec:
    """One perpetual contract: filters of exchangeInfo plus the simulated starting price."""

    symbol: str
    base_asset: str
    quote_asset: str
    initial_price: Decimal
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    price_precision: int
    quantity_precision: int
    multiplier_up: Decimal = _UP
    multiplier_down: Decimal = _DOWN
    multiplier_decimal: int = 4
    max_num_orders: int = 200
    max_num_algo_orders: int = 10
    trigger_protect: Decimal = _TRIGGER_PROTECT
    market_take_bound: Decimal = _TAKE_BOUND
    liquidation_fee: Decimal = _LIQ_FEE
    status: str = "TRADING"
    #: Synthetic book depth per price level; None = the exchange-wide default.
    liquidity_per_level: Decimal | None = None

    def filters_json(self) -> list[dict[str, Any]]:
        """The ``filters`` array of exchangeInfo (§D.3), decimals as strings."""
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": plain(self.min_price),
                "maxPrice": plain(self.max_price),
                "tickSize": plain(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": plain(self.min_qty),
                "maxQty": plain(self.max_qty),
                "stepSize": plain(self.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": plain(self.market_min_qty),
                "maxQty": plain(self.market_max_qty),
                "stepSize": plain(self.market_step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": self.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": self.max_num_algo_orders},
            {"filterType": "MIN_NOTIONAL", "notional": plain(self.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": plain(self.multiplier_up),
                "multiplierDown": plain(self.multiplier_down),
                "multiplierDecimal": str(self.multiplier_decimal),
            },
        ]


def _spec(symbol: str, base: str, **values: Any) -> SymbolSpec:
    return SymbolSpec(symbol=symbol, base_asset=base, quote_asset="USDT", **values)


DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    _spec(
        "BTCUSDT",
        "BTC",
        initial_price=D("50000"),
        tick_size=D("0.10"),
        min_price=D("556.80"),
        max_price=D("4529764"),
        step_size=D("0.001"),
        min_qty=D("0.001"),
        max_qty=D("1000"),
        market_step_size=D("0.001"),
        market_min_qty=D("0.001"),
        market_max_qty=D("120"),
        min_notional=D("100"),
        price_precision=2,
        quantity_precision=3,
    ),
    _spec(
        "ETHUSDT",
        "ETH",
        initial_price=D("3000"),
        tick_size=D("0.01"),
        min_price=D("39.86"),
        max_price=D("306177"),
        step_size=D("0.001"),
        min_qty=D("0.001"),
        max_qty=D("10000"),
        market_step_size=D("0.001"),
        market_min_qty=D("0.001"),
        market_max_qty=D("2000"),
        min_notional=D("20"),
        price_precision=2,
        quantity_precision=3,
    ),
    _spec(
        "BNBUSDT",
        "BNB",
        initial_price=D("600"),
        tick_size=D("0.010"),
        min_price=D("6.600"),
        max_price=D("100000"),
        step_size=D("0.01"),
        min_qty=D("0.01"),
        max_qty=D("100000"),
        market_step_size=D("0.01"),
        market_min_qty=D("0.01"),
        market_max_qty=D("2000"),
        min_notional=D("5"),
        price_precision=3,
        quantity_precision=2,
    ),
    _spec(
        "SOLUSDT",
        "SOL",
        initial_price=D("150"),
        tick_size=D("0.0100"),
        min_price=D("0.4200"),
        max_price=D("6857"),
        step_size=D("1"),
        min_qty=D("1"),
        max_qty=D("1000000"),
        market_step_size=D("1"),
        market_min_qty=D("1"),
        market_max_qty=D("5000"),
        min_notional=D("5"),
        price_precision=4,
        quantity_precision=0,
    ),
)
