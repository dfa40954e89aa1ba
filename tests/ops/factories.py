"""Small model builders shared by the ops tests."""

from __future__ import annotations

from decimal import Decimal

from oexec.models import Fill, Order
from oexec.models.enums import OrderState, OrderType, Side


def order(state: OrderState, oid: str = "o-1", **kw: object) -> Order:
    fields: dict[str, object] = {
        "id": oid,
        "request_id": "r-" + oid,
        "client_order_id": "c-" + oid,
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "quantity": Decimal("0.010"),
        "price": Decimal("50000.0"),
        "state": state,
        "created_at": 1,
        "updated_at": 2,
    }
    fields.update(kw)
    return Order(**fields)  # type: ignore[arg-type]


def fill(is_maker: bool, commission: str = "0.01") -> Fill:
    return Fill(
        order_id="o-1",
        exchange_order_id="42",
        client_order_id="c-o-1",
        symbol="BTCUSDT",
        side=Side.BUY,
        trade_id=7,
        price=Decimal("50000"),
        quantity=Decimal("0.002"),
        commission=Decimal(commission),
        commission_asset="USDT",
        is_maker=is_maker,
        realized_pnl=Decimal(0),
        time=3,
    )
