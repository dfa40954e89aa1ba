"""Pure rules for folding what the venue says into our order record.

One function serves the submit reply, the user-data stream, the poller and the resolver,
so they cannot disagree. It is monotone: a stale or duplicate venue view (lower filled
quantity, older update time) changes nothing, and every real change bumps the version.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from oexec.models import Order, OrderState, OrderType, VenueOrder
from oexec.models.order_state import VENUE_STATUS_TRIGGER, can_transition, next_state

#: States before the venue has confirmed the order exists.
PRE_VENUE_STATES = frozenset(
    {
        OrderState.INIT,
        OrderState.VALIDATING,
        OrderState.PENDING,
        OrderState.SUBMITTING,
        OrderState.UNKNOWN,
    }
)


def apply_venue_order(order: Order, venue: VenueOrder, now_ms: int) -> Order | None:
    """The order as the venue now describes it (version + 1), or None if nothing is new."""
    if venue.executed_quantity < order.filled_quantity:
        return None  # stale view: fills never go backwards
    newer_fill = venue.executed_quantity > order.filled_quantity
    if (
        not newer_fill
        and order.venue_update_time is not None
        and venue.update_time < order.venue_update_time
    ):
        return None  # older event for the same fill level
    trigger = VENUE_STATUS_TRIGGER[venue.status]
    state = order.state
    if can_transition(order.state, trigger):
        state = next_state(order.state, trigger)
    elif not newer_fill:
        return None  # e.g. a late NEW after FILLED, or a repeat of a terminal event
    price, quantity = _current_terms(order, venue)
    changed = (
        state is not order.state
        or newer_fill
        or order.exchange_order_id != venue.exchange_order_id
        or order.venue_status != venue.status.value
        or price != order.price
        or quantity != order.quantity
    )
    if not changed:
        return None
    average = venue.average_price if venue.executed_quantity > 0 else order.average_price
    return attrs.evolve(
        order,
        price=price,
        quantity=quantity,
        state=state,
        exchange_order_id=venue.exchange_order_id,
        filled_quantity=venue.executed_quantity,
        average_price=average,
        cumulative_quote=venue.cumulative_quote,
        venue_status=venue.status.value,
        venue_update_time=max(venue.update_time, order.venue_update_time or 0),
        updated_at=now_ms,
        version=order.version + 1,
    )


def _current_terms(order: Order, venue: VenueOrder) -> tuple[Decimal | None, Decimal]:
    """A LIMIT order's price and quantity as the venue now shows them (an amend, issue
    16, changes both in place); taken only from a view at least as new as the last one
    applied, so a late event from before an amend cannot undo it."""
    if (
        order.type is OrderType.LIMIT
        and venue.price > 0
        and venue.quantity > 0
        and venue.update_time >= (order.venue_update_time or 0)
        and (venue.price != order.price or venue.quantity != order.quantity)
    ):
        # the stored spelling (the client's "0.010") stays unless the value changed
        price = order.price if venue.price == order.price else venue.price
        quantity = order.quantity if venue.quantity == order.quantity else venue.quantity
        return price, quantity
    return order.price, order.quantity


def with_state(
    order: Order,
    state: OrderState,
    now_ms: int,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Order:
    """A local state change (SUBMITTING -> UNKNOWN, -> REJECTED) as the next version."""
    return attrs.evolve(
        order,
        state=state,
        updated_at=now_ms,
        error_code=error_code if error_code is not None else order.error_code,
        error_message=error_message if error_message is not None else order.error_message,
        version=order.version + 1,
    )


def event_topics(before: OrderState, after: OrderState) -> list[str]:
    """Which events a state change announces (order.filled exactly once: on reaching FILLED)."""
    if after is OrderState.REJECTED:
        return ["order.rejected"]
    topics: list[str] = []
    if before in PRE_VENUE_STATES and after not in PRE_VENUE_STATES:
        topics.append("order.created")
    if after is OrderState.FILLED and before is not OrderState.FILLED:
        topics.append("order.filled")
    elif after in (OrderState.CANCELED, OrderState.EXPIRED) and before is not after:
        topics.append("order.canceled")
    elif not topics:
        topics.append("order.updated")
    return topics
