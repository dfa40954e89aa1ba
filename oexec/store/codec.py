"""How orders, fills and state-history entries are written as bytes, for every backend.

One encoding (``oexec.models.serde`` + orjson) so the Redis and SQLite backends store the
same JSON, and a record written by one version reads back in the next. orjson output is
deterministic for equal records, which lets the Redis ``save`` script recognise a retried
write that already landed by comparing bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from oexec.errors import ErrorCode, StoreError
from oexec.models import Fill, Order
from oexec.models.serde import fill_from_dict, fill_to_dict, order_from_dict, order_to_dict


def encode_order(order: Order) -> bytes:
    return orjson.dumps(order_to_dict(order))


def decode_order(data: bytes | str) -> Order:
    """Raises StoreError(INTERNAL) on a record this code cannot read (corrupt or foreign)."""
    try:
        return order_from_dict(orjson.loads(data))
    except Exception as exc:
        raise _corrupt("order", exc) from exc


def encode_fill(fill: Fill) -> bytes:
    return orjson.dumps(fill_to_dict(fill))


def decode_fill(data: bytes | str) -> Fill:
    try:
        return fill_from_dict(orjson.loads(data))
    except Exception as exc:
        raise _corrupt("fill", exc) from exc


def state_entry(order: Order, reason: str) -> bytes:
    """One line of an order's state history: what it became, at which version, when, why."""
    return orjson.dumps(
        {
            "state": order.state.value,
            "version": order.version,
            "at": order.updated_at,
            "reason": reason,
        }
    )


def decode_state_entry(data: bytes | str) -> dict[str, Any]:
    try:
        entry = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _corrupt("state entry", exc) from exc
    if not isinstance(entry, dict):
        raise _corrupt("state entry", TypeError(type(entry).__name__))
    return entry


def _corrupt(what: str, exc: Exception) -> StoreError:
    return StoreError(
        f"stored {what} cannot be decoded: {type(exc).__name__}",
        code=ErrorCode.INTERNAL,
    )
