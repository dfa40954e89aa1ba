"""Order and fill records held by the engine, and their venue JSON (§C.1, §B.3)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

import attrs

from oexec.sim.engine.numbers import ZERO, fmt, fmt_fixed, money
from oexec.sim.engine.params import (
    OrderType,
    PositionSide,
    Side,
    StpMode,
    TimeInForce,
    WorkingType,
)
from oexec.sim.engine.triggers import Trigger


class Status(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


OPEN_STATUSES = frozenset({Status.NEW, Status.PARTIALLY_FILLED})


@attrs.define
class Fill:
    """One trade of one order."""

    trade_id: int
    order_id: int
    symbol: str
    side: Side
    position_side: PositionSide
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    realized_pnl: Decimal
    maker: bool
    time: int

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty

    def to_json(self) -> dict[str, Any]:
        """A ``userTrades`` element."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "side": self.side.value,
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "realizedPnl": fmt(self.realized_pnl),
            "marginAsset": self.commission_asset,
            "quoteQty": fmt(self.quote_qty),
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "positionSide": self.position_side.value,
            "buyer": self.side is Side.BUY,
            "maker": self.maker,
        }


@attrs.define
class Order:
    """One order of ``/fapi/v1/order``, conditional or not, across its whole life."""

    order_id: int
    account_id: str
    symbol: str
    client_order_id: str
    side: Side
    position_side: PositionSide
    type: OrderType
    orig_type: OrderType
    time_in_force: TimeInForce
    orig_qty: Decimal
    price: Decimal
    time: int
    seq: int
    stop_price: Decimal = ZERO
    working_type: WorkingType = WorkingType.CONTRACT_PRICE
    price_protect: bool = False
    reduce_only: bool = False
    close_position: bool = False
    good_till_date: int = 0
    stp_mode: StpMode = StpMode.EXPIRE_MAKER
    status: Status = Status.NEW
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    trigger: Trigger | None = None
    fills: list[Fill] = attrs.field(factory=list)
    expire_reason: int = 0
    modify_count: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    @property
    def waiting_trigger(self) -> bool:
        return self.trigger is not None and self.type == self.orig_type

    def to_json(self) -> dict[str, Any]:
        """The order object of §C.1 (query shape; a superset of the POST/DELETE shapes)."""
        trailing = self.orig_type is OrderType.TRAILING_STOP_MARKET and self.trigger
        body: dict[str, Any] = {
            "orderId": self.order_id,
            "symbol": self.symbol,
            "status": self.status.value,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price),
            "avgPrice": fmt(money(self.avg_price)) if self.executed_qty else fmt_fixed(ZERO, 5),
            "origQty": fmt(self.orig_qty),
            "executedQty": fmt(self.executed_qty),
            "cumQty": fmt(self.executed_qty),
            "cumQuote": fmt(self.cum_quote),
            "timeInForce": self.time_in_force.value,
            "type": self.type.value,
            "reduceOnly": self.reduce_only,
            "closePosition": self.close_position,
            "side": self.side.value,
            "positionSide": self.position_side.value,
            "stopPrice": fmt(money(self.stop_price)),
            "workingType": self.working_type.value,
            "priceProtect": self.price_protect,
            "origType": self.orig_type.value,
            "priceMatch": "NONE",
            "selfTradePreventionMode": self.stp_mode.value,
            "goodTillDate": self.good_till_date,
            "time": self.time,
            "updateTime": self.update_time,
        }
        if trailing and self.trigger is not None:
            activation = self.trigger.activate_price
            body["activatePrice"] = fmt(activation) if activation is not None else "0"
            body["priceRate"] = fmt(self.trigger.callback_rate or ZERO)
        return body

    def truth(self) -> dict[str, Any]:
        """Ground-truth record for tests: identity, state and every fill."""
        return {
            "accountId": self.account_id,
            "orderId": self.order_id,
            "clientOrderId": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "type": self.type.value,
            "origType": self.orig_type.value,
            "status": self.status.value,
            "origQty": fmt(self.orig_qty),
            "executedQty": fmt(self.executed_qty),
            "price": fmt(self.price),
            "fills": [
                {
                    "tradeId": fill.trade_id,
                    "price": fmt(fill.price),
                    "qty": fmt(fill.qty),
                    "commission": fmt(fill.commission),
                    "maker": fill.maker,
                    "time": fill.time,
                }
                for fill in self.fills
            ],
        }
