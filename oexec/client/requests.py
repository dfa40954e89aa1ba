"""What both clients share: request fields from Python arguments, results to models.

Decimals are accepted as Decimal or str and sent as plain strings; a float raises
TypeError at once (it cannot carry an exact price). Enums are accepted as members or
their string values.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Any

from oexec.client.errors import ProtocolError, error_for
from oexec.errors import OexecError
from oexec.models import Order, OrderType, Side, TimeInForce, format_decimal
from oexec.wire import ErrorReply, OkReply, Reply, order_from_wire

DecimalLike = Decimal | str


def new_request_id() -> str:
    return uuid.uuid4().hex


def decimal_text(value: DecimalLike | None, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"{field}: pass a Decimal or a str, not {type(value).__name__}")


def enum_text(value: StrEnum | str | None) -> str | None:
    return None if value is None else str(value)


#: Rarely used place_order options, passed as keywords: name -> is it a decimal.
PLACE_OPTIONS: dict[str, bool] = {
    "position_side": False,
    "working_type": False,
    "callback_rate": True,
    "activation_price": True,
    "good_till_date": False,
    "deadline_ms": False,
}


def place_order_fields(
    *,
    symbol: str,
    side: Side | str,
    type: OrderType | str,
    quantity: DecimalLike,
    price: DecimalLike | None,
    time_in_force: TimeInForce | str | None,
    stop_price: DecimalLike | None,
    reduce_only: bool,
    request_id: str | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Raises TypeError for a float decimal or an unknown option."""
    fields: dict[str, Any] = {
        "request_id": request_id or new_request_id(),
        "symbol": symbol,
        "side": enum_text(side),
        "type": enum_text(type),
        "quantity": decimal_text(quantity, "quantity"),
        "price": decimal_text(price, "price"),
        "time_in_force": enum_text(time_in_force),
        "stop_price": decimal_text(stop_price, "stop_price"),
        "reduce_only": reduce_only or None,
    }
    for key, value in options.items():
        if key not in PLACE_OPTIONS:
            raise TypeError(f"place_order() got an unexpected keyword argument {key!r}")
        if PLACE_OPTIONS[key]:
            fields[key] = decimal_text(value, key)
        else:
            fields[key] = enum_text(value) if isinstance(value, StrEnum) else value
    return fields


def lookup_fields(order_id: str | None, request_id: str | None) -> dict[str, Any]:
    if (order_id is None) == (request_id is None):
        raise ValueError("give exactly one of order_id and request_id")
    return {"order_id": order_id, "request_id": request_id}


def history_fields(
    symbol: str | None, limit: int, start_ms: int | None, end_ms: int | None
) -> dict[str, Any]:
    return {"symbol": symbol, "limit": limit, "start_ms": start_ms, "end_ms": end_ms}


def result_of(reply: Reply) -> dict[str, Any]:
    """The result map of an ok reply; an error reply raises its ClientError family."""
    if isinstance(reply, ErrorReply):
        raise error_for(reply.code, reply.message, reply.details)
    assert isinstance(reply, OkReply)
    return reply.result


def to_order(result: dict[str, Any]) -> Order:
    try:
        return order_from_wire(result.get("order"))
    except OexecError as exc:
        raise ProtocolError("BAD_REPLY", exc.message) from None


def to_orders(result: dict[str, Any]) -> list[Order]:
    orders = result.get("orders")
    if not isinstance(orders, list):
        raise ProtocolError("BAD_REPLY", "result has no orders list")
    try:
        return [order_from_wire(item) for item in orders]
    except OexecError as exc:
        raise ProtocolError("BAD_REPLY", exc.message) from None
