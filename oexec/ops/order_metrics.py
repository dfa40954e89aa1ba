"""Order-change accounting: what one ``(before, after)`` order change means for metrics.

The writer reports every persisted change; from it we derive placed / filled / rejected
counts and the open-orders-by-state gauge, so no pipeline stage has to remember to
count. State counts are kept per order id (not by trusting ``before``): a change we
missed, or an order seeded at start-up, cannot drive a count negative. The recent
changes ring feeds the dashboard's live order panel.
"""

from __future__ import annotations

from collections import Counter, deque
from enum import StrEnum
from typing import Any

from oexec.models import Order
from oexec.models.enums import OrderState

# Before the venue acknowledged the order (UNKNOWN: sent, answer not known yet).
PRE_VENUE = frozenset(
    {
        OrderState.INIT,
        OrderState.VALIDATING,
        OrderState.PENDING,
        OrderState.SUBMITTING,
        OrderState.UNKNOWN,
    }
)
# Any state the venue can only have reported after accepting the order.
ACKNOWLEDGED = frozenset(
    {
        OrderState.NEW,
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
        OrderState.CANCELED,
        OrderState.EXPIRED,
    }
)
RECENT_CHANGES = 50


class OrderEvent(StrEnum):
    PLACED = "placed"
    FILLED = "filled"
    REJECTED = "rejected"


def classify(before: Order | None, after: Order) -> tuple[OrderEvent, ...]:
    """The counted events a change represents (a market order may be placed and filled)."""
    old = before.state if before is not None else None
    new = after.state
    if old == new:
        return ()
    events: list[OrderEvent] = []
    if (old is None or old in PRE_VENUE) and new in ACKNOWLEDGED:
        events.append(OrderEvent.PLACED)
    if new is OrderState.FILLED:
        events.append(OrderEvent.FILLED)
    if new is OrderState.REJECTED:
        events.append(OrderEvent.REJECTED)
    return tuple(events)


class OrderBook:
    """Current state of every non-terminal order this daemon knows, and recent changes."""

    def __init__(self) -> None:
        self._state: dict[str, OrderState] = {}
        self.counts: Counter[OrderState] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_CHANGES)

    def apply(self, order: Order) -> None:
        previous = self._state.pop(order.id, None)
        if previous is not None:
            self.counts[previous] -= 1
            if not self.counts[previous]:
                del self.counts[previous]
        if not order.state.is_terminal:
            self._state[order.id] = order.state
            self.counts[order.state] += 1

    def record(self, order: Order) -> None:
        """Apply and remember the change for the live view."""
        self.apply(order)
        self.recent.appendleft(
            {
                "id": order.id,
                "symbol": order.symbol,
                "side": order.side.value,
                "type": order.type.value,
                "state": order.state.value,
                "quantity": str(order.quantity),
                "filled": str(order.filled_quantity),
                "price": None if order.price is None else str(order.price),
                "error_code": order.error_code,
                "updated_at": order.updated_at,
            }
        )

    def open_count(self) -> int:
        return sum(n for state, n in self.counts.items() if state.is_open)
