"""What both clients share for the ops beyond one order: request fields and results.

Batch results come back one per element, in request order: an ``Order``, or the
element's ``ClientError`` (the same class a single request would have raised) — a batch
with a refused element still succeeds as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from oexec.client import requests as rq
from oexec.client.errors import ClientError, ProtocolError, error_for
from oexec.errors import OexecError
from oexec.models import Order
from oexec.models.account import Balance, Position
from oexec.wire.strategy import MAX_BATCH, balance_from_wire, position_from_wire

#: place_order keywords a batch element may carry (the rest are PLACE_OPTIONS).
PLACE_KEYS = frozenset(
    {
        "symbol",
        "side",
        "type",
        "quantity",
        "price",
        "time_in_force",
        "stop_price",
        "reduce_only",
        "request_id",
    }
)


def modify_fields(
    order_id: str | None,
    request_id: str | None,
    price: rq.DecimalLike | None,
    quantity: rq.DecimalLike | None,
) -> dict[str, Any]:
    """Raises ValueError without a lookup key or without anything to change."""
    fields = rq.lookup_fields(order_id, request_id)
    if price is None and quantity is None:
        raise ValueError("give a new price, a new quantity or both")
    fields["price"] = rq.decimal_text(price, "price")
    fields["quantity"] = rq.decimal_text(quantity, "quantity")
    return fields


def place_orders_fields(orders: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Each element holds place_order's keywords; a missing request_id is generated.
    Raises ValueError for an empty or too long batch, TypeError for a bad keyword."""
    if not 1 <= len(orders) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1..{MAX_BATCH} orders, got {len(orders)}")
    elements = []
    for order in orders:
        known = {key: value for key, value in order.items() if key in PLACE_KEYS}
        missing = {"symbol", "side", "type", "quantity"} - known.keys()
        if missing:
            raise TypeError(f"place_orders element lacks {sorted(missing)}")
        fields = rq.place_order_fields(
            symbol=known["symbol"],
            side=known["side"],
            type=known["type"],
            quantity=known["quantity"],
            price=known.get("price"),
            time_in_force=known.get("time_in_force"),
            stop_price=known.get("stop_price"),
            reduce_only=bool(known.get("reduce_only", False)),
            request_id=known.get("request_id"),
            options={key: value for key, value in order.items() if key not in PLACE_KEYS},
        )
        elements.append({key: value for key, value in fields.items() if value is not None})
    return {"orders": elements}


def cancel_orders_fields(order_ids: Sequence[str], request_ids: Sequence[str]) -> dict[str, Any]:
    if bool(order_ids) == bool(request_ids):
        raise ValueError("give exactly one of order_ids and request_ids")
    ids = list(order_ids or request_ids)
    if len(ids) > MAX_BATCH:
        raise ValueError(f"a batch holds 1..{MAX_BATCH} ids, got {len(ids)}")
    return {"order_ids": list(order_ids) or None, "request_ids": list(request_ids) or None}


def to_results(result: dict[str, Any]) -> list[Order | ClientError]:
    items = result.get("results")
    if not isinstance(items, list):
        raise ProtocolError("BAD_REPLY", "result has no results list")
    out: list[Order | ClientError] = []
    for item in items:
        if isinstance(item, dict) and "order" in item:
            out.append(rq.to_order(item))
        elif isinstance(item, dict) and isinstance(item.get("error"), dict):
            error = item["error"]
            details = error.get("details")
            out.append(
                error_for(
                    str(error.get("code", "INTERNAL")),
                    str(error.get("message", "")),
                    details if isinstance(details, dict) else {},
                )
            )
        else:
            raise ProtocolError("BAD_REPLY", "a batch result is neither an order nor an error")
    return out


def to_positions(result: dict[str, Any]) -> list[Position]:
    return _rows(result, "positions", position_from_wire)


def to_balances(result: dict[str, Any]) -> list[Balance]:
    return _rows(result, "balances", balance_from_wire)


def _rows(result: dict[str, Any], key: str, read: Any) -> list[Any]:
    rows = result.get(key)
    if not isinstance(rows, list):
        raise ProtocolError("BAD_REPLY", f"result has no {key} list")
    try:
        return [read(row) for row in rows]
    except OexecError as exc:
        raise ProtocolError("BAD_REPLY", exc.message) from None
