"""Order-change accounting: what one ``(before, after)`` order change means for metrics.

The writer reports every persisted change; from it we derive placed / filled / rejected
counts and the open-orders-by-state gauge, so no pipeline stage has to remember to
count. State counts are kept per order id (not by trusting ``before``): a change we
missed, or an order seeded at start-up, cannot drive a count negative.

The live dashboard's order panel reads two views kept here: one row per open order
(keyed by order id, replaced on each change, so a canceled order leaves the list
instead of lingering as a stale NEW row), bounded to the most recently changed
``ACTIVE_ROWS`` (the open count stays exact); and the orders that reached a final state,
newest first, as the recent activity.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
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
#: Open orders the live view keeps a row for (the most recently changed); memory stays
#: bounded however many orders rest on the venue.
ACTIVE_ROWS = 200
#: Orders that reached a final state, newest first, for the recent-activity list.
RECENT_FINISHED = 50


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
    """Current state of every non-terminal order this daemon knows, and the live view."""

    def __init__(self) -> None:
        self._state: dict[str, OrderState] = {}
        self.counts: Counter[OrderState] = Counter()
        #: open orders' rows by order id, least recently changed first
        self.active: OrderedDict[str, dict[str, Any]] = OrderedDict()
        #: final orders' rows, newest first
        self.finished: deque[dict[str, Any]] = deque(maxlen=RECENT_FINISHED)

    def apply(self, order: Order) -> None:
        """Count the order in its state and show it in the live view (no events)."""
        previous = self._state.pop(order.id, None)
        if previous is not None:
            self.counts[previous] -= 1
            if not self.counts[previous]:
                del self.counts[previous]
        if not order.state.is_terminal:
            self._state[order.id] = order.state
            self.counts[order.state] += 1
        self._show(order)

    def record(self, order: Order) -> None:
        """A persisted change (the writer's hook); same as :meth:`apply`."""
        self.apply(order)

    def _show(self, order: Order) -> None:
        shown = self.active.get(order.id)
        if shown is not None and shown["version"] > order.version:
            return  # an older change reported late: the row already shows a newer one
        row = order_row(order)
        if order.state.is_terminal:
            self.active.pop(order.id, None)
            for kept in [r for r in self.finished if r["id"] == order.id]:
                self.finished.remove(kept)  # a final state reported twice: one row
            self.finished.appendleft(row)
            return
        self.active[order.id] = row
        self.active.move_to_end(order.id)
        while len(self.active) > ACTIVE_ROWS:
            self.active.popitem(last=False)

    def open_rows(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` open orders, the most recently changed first."""
        out: list[dict[str, Any]] = []
        for row in reversed(self.active.values()):
            if len(out) == limit:
                break
            out.append(row)
        return out

    def open_count(self) -> int:
        return sum(n for state, n in self.counts.items() if state.is_open)


def order_row(order: Order) -> dict[str, Any]:
    """One order as the live view shows it (JSON-safe: decimals as strings)."""
    return {
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
        "version": order.version,
    }
