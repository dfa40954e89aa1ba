"""Orders and fills in their wire shape, and the client-side inverse.

The wire shape is the model's cattrs shape (oexec/models/serde.py): every ``Order``
field under its snake_case name — plan §4.2's ``id, request_id, exchange_order_id,
client_order_id, symbol, side, type, time_in_force, quantity, price, state,
filled_quantity, average_price, created_at, updated_at, error_code, error_message`` and
the rest (``version``, ``stop_price``, ...) — decimals as strings, ``None`` kept as nil.
The inverse ignores fields it does not know, so an older client reads a newer daemon.
"""

from __future__ import annotations

from typing import Any

import cattrs

from oexec.errors import ErrorCode, WireError
from oexec.models import Fill, Order
from oexec.models.serde import fill_from_dict, fill_to_dict, order_from_dict, order_to_dict


def order_to_wire(order: Order) -> dict[str, Any]:
    return order_to_dict(order)


def fill_to_wire(fill: Fill) -> dict[str, Any]:
    return fill_to_dict(fill)


def order_from_wire(data: Any) -> Order:
    """Raises WireError(BAD_FRAME) when ``data`` is not an order map."""
    if not isinstance(data, dict):
        raise WireError("order: not a map", code=ErrorCode.BAD_FRAME)
    try:
        return order_from_dict(data)
    except (cattrs.BaseValidationError, ValueError, TypeError, ArithmeticError) as exc:
        raise WireError(f"order: cannot read: {exc}", code=ErrorCode.BAD_FRAME) from None


def fill_from_wire(data: Any) -> Fill:
    """Raises WireError(BAD_FRAME) when ``data`` is not a fill map."""
    if not isinstance(data, dict):
        raise WireError("fill: not a map", code=ErrorCode.BAD_FRAME)
    try:
        return fill_from_dict(data)
    except (cattrs.BaseValidationError, ValueError, TypeError, ArithmeticError) as exc:
        raise WireError(f"fill: cannot read: {exc}", code=ErrorCode.BAD_FRAME) from None
