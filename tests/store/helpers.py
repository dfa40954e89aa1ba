"""Factories shared by the store tests (orders, fills, next versions)."""

from __future__ import annotations

import os
import time
import uuid
from decimal import Decimal
from typing import Any

import attrs

from oexec.models import Fill, Order, OrderState, OrderType, Side, TimeInForce

REDIS_URL = os.environ.get("OEXEC_TEST_REDIS", "redis://127.0.0.1:6379/15")
#: An hour ago: history only keeps orders created within the order TTL of now.
BASE_MS = int(time.time() * 1000) - 3_600_000


def make_order(
    n: int = 1,
    *,
    request_id: str | None = None,
    order_id: str | None = None,
    symbol: str = "BTCUSDT",
    state: OrderState = OrderState.SUBMITTING,
    created_at: int | None = None,
    version: int = 1,
) -> Order:
    created = BASE_MS + n if created_at is None else created_at
    return Order(
        id=order_id or f"ord-{uuid.uuid4().hex[:12]}",
        request_id=request_id or f"req-{uuid.uuid4().hex[:12]}",
        client_order_id=f"x-{uuid.uuid4().hex[:16]}",
        symbol=symbol,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal("50000.10"),
        time_in_force=TimeInForce.GTC,
        state=state,
        created_at=created,
        updated_at=created,
        version=version,
    )


def make_fill(order: Order, trade_id: int, qty: str = "0.005") -> Fill:
    return Fill(
        order_id=order.id,
        exchange_order_id="123",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        trade_id=trade_id,
        price=Decimal("50000.10"),
        quantity=Decimal(qty),
        commission=Decimal("0.0012"),
        commission_asset="USDT",
        is_maker=True,
        realized_pnl=Decimal(0),
        time=BASE_MS + trade_id,
    )


def evolve(order: Order, **changes: Any) -> Order:
    """The next stored version of ``order`` with ``changes``."""
    fields = {"version": order.version + 1, "updated_at": order.updated_at + 1, **changes}
    return attrs.evolve(order, **fields)
