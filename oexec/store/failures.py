"""The typed failures both backends raise, built in one place so they match exactly."""

from __future__ import annotations

from oexec.errors import StoreConflictError, StoreError
from oexec.models import Order


def version_conflict(order: Order, stored: int | None) -> StoreConflictError:
    """``save`` found another stored version (``stored``) or no order at all (None)."""
    return StoreConflictError(
        "order version conflict" if stored is not None else "order not stored",
        details={"order_id": order.id, "version": order.version, "stored": stored},
    )


def id_taken(order: Order) -> StoreConflictError:
    """``claim`` of a new request found ``order.id`` already stored (an id collision)."""
    return StoreConflictError("order id already stored", details={"order_id": order.id})


def claim_orphaned(request_id: str, order_id: str) -> StoreError:
    """The request_id is claimed but its order record is gone (expired or deleted)."""
    return StoreError(
        "request_id claimed but its order is gone",
        details={"request_id": request_id, "order_id": order_id},
    )
