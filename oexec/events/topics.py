"""Which topic an order change is announced on, and the event bodies (docs/wire.md, "Events").

The topic follows the order's state, read from a table; ``order.created`` is the first
announcement of an order that is not yet final. EXPIRED goes to ``order.canceled`` (the
body's ``state`` tells a user cancel from a venue expiry).
"""

from __future__ import annotations

from typing import Any

from oexec.models import Fill, Order, OrderState
from oexec.service.ports import EventTopics
from oexec.wire import fill_to_wire, order_to_wire

#: States whose announcement has its own topic, whatever came before.
STATE_TOPICS: dict[OrderState, str] = {
    OrderState.FILLED: EventTopics.ORDER_FILLED,
    OrderState.CANCELED: EventTopics.ORDER_CANCELED,
    OrderState.EXPIRED: EventTopics.ORDER_CANCELED,
    OrderState.REJECTED: EventTopics.ORDER_REJECTED,
}


def order_topic(order: Order, previous: OrderState | None = None) -> str:
    """``previous`` is the state before this change, None when the order is new."""
    topic = STATE_TOPICS.get(order.state)
    if topic is not None:
        return topic
    return EventTopics.ORDER_CREATED if previous is None else EventTopics.ORDER_UPDATED


def order_event(order: Order, previous: OrderState | None = None) -> tuple[str, dict[str, Any]]:
    """(topic, body) for ``sink.publish``; the body carries the order incl. its version."""
    body: dict[str, Any] = {"order": order_to_wire(order)}
    if previous is not None:
        body["previous_state"] = previous.value
    return order_topic(order, previous), body


def fill_event(fill: Fill) -> tuple[str, dict[str, Any]]:
    return EventTopics.FILL, {"fill": fill_to_wire(fill)}
