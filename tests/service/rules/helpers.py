"""Builders for rule tests: a BTCUSDT-like symbol and intents with sane defaults."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from oexec.models import OrderIntent, OrderTerms, SymbolRules
from oexec.models.enums import OrderType, Side, TimeInForce
from oexec.service.rules.context import MarketContext

D = Decimal

RULES = SymbolRules(
    symbol="BTCUSDT",
    base_asset="BTC",
    min_price=D("100"),
    max_price=D("1000000"),
    tick_size=D("0.10"),
    min_qty=D("0.001"),
    max_qty=D("1000"),
    step_size=D("0.001"),
    market_min_qty=D("0.001"),
    market_max_qty=D("120"),
    market_step_size=D("0.001"),
    min_notional=D("100"),
    multiplier_up=D("1.0500"),
    multiplier_down=D("0.9500"),
    max_num_orders=200,
    max_num_algo_orders=10,
)
MARK = D("50000")
NOW_MS = 1_700_000_000_000


def rules(**changes: Any) -> SymbolRules:
    return attrs.evolve(RULES, **changes)


def ctx(**changes: Any) -> MarketContext:
    base = MarketContext(mark_price=MARK, now_ms=NOW_MS)
    return attrs.evolve(base, **changes)


def limit(**changes: Any) -> OrderIntent:
    """A valid LIMIT BUY 0.01 @ 50000 GTC."""
    base = OrderIntent(
        request_id="r-1",
        terms=OrderTerms(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=D("0.010"),
            price=D("50000.0"),
            time_in_force=TimeInForce.GTC,
        ),
    )
    own = {k: changes.pop(k) for k in ("request_id", "deadline_ms") if k in changes}
    return attrs.evolve(base, terms=attrs.evolve(base.terms, **changes), **own)


def market(**changes: Any) -> OrderIntent:
    fields: dict[str, Any] = {"type": OrderType.MARKET, "price": None, "time_in_force": None}
    return limit(**{**fields, **changes})
