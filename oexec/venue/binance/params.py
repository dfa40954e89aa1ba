"""oexec requests → Binance parameter lists (name, already-formatted string value).

Pure functions. Decimals go through ``format_decimal`` (no exponent, exact); flags as
``"true"``; optional fields are simply omitted. Order of parameters is fixed so the
signed bytes are reproducible in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import orjson

from oexec.errors import VenueRejectedError
from oexec.models import format_decimal
from oexec.models.enums import PositionSide, Side
from oexec.service.ports import VenueOrderRequest

Param = tuple[str, str]

#: Submits ask for RESULT: for MARKET/IOC/FOK/GTX the answer is then the terminal state
#: with the fills already counted, so the order record is right without waiting for the
#: user stream or a poll. ACK saves the venue little (the engine runs either way) and
#: would report an instantly filled MARKET as NEW with zero fills.
NEW_ORDER_RESP_TYPE = "RESULT"


def order_fields(req: VenueOrderRequest) -> list[Param]:
    """The fields of one new order, as for ``POST /fapi/v1/order`` (§C.2)."""
    terms = req.terms
    fields: list[Param] = [
        ("symbol", terms.symbol),
        ("side", terms.side.value),
        ("type", terms.type.value),
        ("newClientOrderId", req.client_order_id),
        ("quantity", format_decimal(terms.quantity)),
    ]
    optional: list[tuple[str, str | None]] = [
        ("price", _dec(terms.price)),
        ("timeInForce", terms.time_in_force.value if terms.time_in_force else None),
        ("stopPrice", _dec(terms.stop_price)),
        ("reduceOnly", "true" if terms.reduce_only else None),
        (
            "positionSide",
            None if terms.position_side is PositionSide.BOTH else terms.position_side.value,
        ),
        ("workingType", terms.working_type.value if terms.working_type else None),
        ("callbackRate", _dec(terms.callback_rate)),
        ("activationPrice", _dec(terms.activation_price)),
        ("goodTillDate", str(terms.good_till_date) if terms.good_till_date is not None else None),
    ]
    fields += [(name, value) for name, value in optional if value is not None]
    fields.append(("newOrderRespType", NEW_ORDER_RESP_TYPE))
    return fields


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def order_id_params(
    symbol: str, client_order_id: str | None, order_id: str | None, *, prefix: str = "orig"
) -> list[Param]:
    """``symbol`` plus ``orderId`` (preferred) or ``origClientOrderId``."""
    if order_id is not None:
        return [("symbol", symbol), ("orderId", order_id)]
    if client_order_id is not None:
        return [("symbol", symbol), (f"{prefix}ClientOrderId", client_order_id)]
    raise VenueRejectedError("an order id or a client order id is required")


def modify_params(
    symbol: str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    *,
    client_order_id: str | None,
    order_id: str | None,
) -> list[Param]:
    """``PUT /fapi/v1/order`` (§C.9): both quantity and price are mandatory."""
    return [
        *order_id_params(symbol, client_order_id, order_id),
        ("side", side.value),
        ("quantity", format_decimal(quantity)),
        ("price", format_decimal(price)),
    ]


def batch_orders_param(requests: Sequence[VenueOrderRequest]) -> Param:
    """``batchOrders``: a compact JSON array of order objects with string values."""
    items = [dict(order_fields(r)) for r in requests]
    return ("batchOrders", orjson.dumps(items).decode("utf-8"))


def batch_cancel_params(
    symbol: str, *, client_order_ids: Sequence[str] = (), order_ids: Sequence[str] = ()
) -> list[Param]:
    """``DELETE /fapi/v1/batchOrders`` by id list (numbers) or client-id list (strings)."""
    if order_ids:
        listing = orjson.dumps([int(i) for i in order_ids]).decode("utf-8")
        return [("symbol", symbol), ("orderIdList", listing)]
    listing = orjson.dumps(list(client_order_ids)).decode("utf-8")
    return [("symbol", symbol), ("origClientOrderIdList", listing)]
