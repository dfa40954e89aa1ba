"""The order mix every row sends, and how each client spells it.

Why this mix: every order reaches a terminal state at once (MARKET fills, an IOC limit
away from the market expires), so neither the simulator's book nor the daemon's open
orders grow during a run, buys and sells alternate so the position stays flat, and both
the fill path (trades, user-stream fill events) and the no-fill path are exercised.
Quantities keep BTCUSDT above its 100 USDT minimum notional.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs

SYMBOL = "BTCUSDT"
CCXT_SYMBOL = "BTC/USDT:USDT"
QUANTITY = Decimal("0.003")
TICK = Decimal("0.1")
#: IOC limits this far from the mark never cross the simulator's flat book.
IOC_OFFSET = Decimal("0.02")


@attrs.frozen
class OrderSpec:
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: str | None = None


def order_mix(mark: Decimal) -> tuple[OrderSpec, ...]:
    """The four orders the rows cycle through, priced from the current mark."""
    below = (mark * (1 - IOC_OFFSET)).quantize(TICK, rounding=ROUND_DOWN)
    above = (mark * (1 + IOC_OFFSET)).quantize(TICK, rounding=ROUND_DOWN)
    return (
        OrderSpec("BUY", "MARKET", QUANTITY),
        OrderSpec("BUY", "LIMIT", QUANTITY, below, "IOC"),
        OrderSpec("SELL", "MARKET", QUANTITY),
        OrderSpec("SELL", "LIMIT", QUANTITY, above, "IOC"),
    )


def oexec_fields(spec: OrderSpec) -> dict[str, Any]:
    """Keyword arguments for ``Client.place_order`` / ``AsyncClient.place_order``."""
    fields: dict[str, Any] = {
        "symbol": SYMBOL,
        "side": spec.side,
        "type": spec.type,
        "quantity": spec.quantity,
    }
    if spec.price is not None:
        fields["price"] = spec.price
    if spec.time_in_force is not None:
        fields["time_in_force"] = spec.time_in_force
    return fields


def venue_params(spec: OrderSpec, client_order_id: str) -> list[tuple[str, str]]:
    """``POST /fapi/v1/order`` parameters (unsigned), as python-binance and the floor send."""
    params = [
        ("symbol", SYMBOL),
        ("side", spec.side),
        ("type", spec.type),
        ("quantity", str(spec.quantity)),
    ]
    if spec.price is not None:
        params.append(("price", str(spec.price)))
    if spec.time_in_force is not None:
        params.append(("timeInForce", spec.time_in_force))
    params.append(("newClientOrderId", client_order_id))
    return params


def ccxt_args(spec: OrderSpec) -> tuple[str, str, str, str, str | None, dict[str, Any]]:
    """Positional arguments for ccxt ``create_order`` (amounts as strings: exact)."""
    params: dict[str, Any] = {}
    if spec.time_in_force is not None:
        params["timeInForce"] = spec.time_in_force
    price = str(spec.price) if spec.price is not None else None
    return (CCXT_SYMBOL, spec.type.lower(), spec.side.lower(), str(spec.quantity), price, params)
