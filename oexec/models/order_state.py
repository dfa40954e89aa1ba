"""The order lifecycle as a table: (state, trigger) -> next state.

Read it row by row; every legal move is listed, anything else is refused with
IllegalTransitionError. Triggers are what the daemon learns (a validation outcome, a venue
reply, a stream event, a reconciliation decision), so the same table serves the submit
path, the user-data stream and the resolver.
"""

from __future__ import annotations

from enum import StrEnum

from oexec.errors import IllegalTransitionError
from oexec.models.enums import OrderState as S
from oexec.models.enums import VenueOrderStatus


class Trigger(StrEnum):
    VALIDATE = "VALIDATE"  # pre-trade chain starts
    ACCEPT = "ACCEPT"  # pre-trade chain passed
    REJECT = "REJECT"  # pre-trade or venue rejection; proven never placed
    SUBMIT = "SUBMIT"  # request is being sent to the venue
    UNKNOWN = "UNKNOWN"  # sent, outcome unknown
    VENUE_NEW = "VENUE_NEW"
    VENUE_PARTIAL = "VENUE_PARTIAL"
    VENUE_FILLED = "VENUE_FILLED"
    VENUE_CANCELED = "VENUE_CANCELED"
    VENUE_EXPIRED = "VENUE_EXPIRED"


_LIVE_MOVES = {
    Trigger.VENUE_NEW: S.NEW,
    Trigger.VENUE_PARTIAL: S.PARTIALLY_FILLED,
    Trigger.VENUE_FILLED: S.FILLED,
    Trigger.VENUE_CANCELED: S.CANCELED,
    Trigger.VENUE_EXPIRED: S.EXPIRED,
}

#: The whole lifecycle. Missing pairs are illegal.
TRANSITIONS: dict[tuple[S, Trigger], S] = {
    (S.INIT, Trigger.VALIDATE): S.VALIDATING,
    (S.INIT, Trigger.REJECT): S.REJECTED,
    (S.VALIDATING, Trigger.ACCEPT): S.PENDING,
    (S.VALIDATING, Trigger.REJECT): S.REJECTED,
    (S.PENDING, Trigger.SUBMIT): S.SUBMITTING,
    (S.PENDING, Trigger.REJECT): S.REJECTED,
    (S.SUBMITTING, Trigger.REJECT): S.REJECTED,
    (S.SUBMITTING, Trigger.UNKNOWN): S.UNKNOWN,
    **{(S.SUBMITTING, t): s for t, s in _LIVE_MOVES.items()},
    # an unknown submit ends only by what the venue proves
    (S.UNKNOWN, Trigger.UNKNOWN): S.UNKNOWN,
    (S.UNKNOWN, Trigger.REJECT): S.REJECTED,
    **{(S.UNKNOWN, t): s for t, s in _LIVE_MOVES.items()},
    (S.NEW, Trigger.VENUE_NEW): S.NEW,  # amendment / duplicate event
    (S.NEW, Trigger.VENUE_PARTIAL): S.PARTIALLY_FILLED,
    (S.NEW, Trigger.VENUE_FILLED): S.FILLED,
    (S.NEW, Trigger.VENUE_CANCELED): S.CANCELED,
    (S.NEW, Trigger.VENUE_EXPIRED): S.EXPIRED,
    (S.PARTIALLY_FILLED, Trigger.VENUE_PARTIAL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, Trigger.VENUE_FILLED): S.FILLED,
    (S.PARTIALLY_FILLED, Trigger.VENUE_CANCELED): S.CANCELED,
    (S.PARTIALLY_FILLED, Trigger.VENUE_EXPIRED): S.EXPIRED,
}

#: Venue status -> the trigger it implies.
VENUE_STATUS_TRIGGER: dict[VenueOrderStatus, Trigger] = {
    VenueOrderStatus.NEW: Trigger.VENUE_NEW,
    VenueOrderStatus.PARTIALLY_FILLED: Trigger.VENUE_PARTIAL,
    VenueOrderStatus.FILLED: Trigger.VENUE_FILLED,
    VenueOrderStatus.CANCELED: Trigger.VENUE_CANCELED,
    VenueOrderStatus.EXPIRED: Trigger.VENUE_EXPIRED,
    VenueOrderStatus.EXPIRED_IN_MATCH: Trigger.VENUE_EXPIRED,
    VenueOrderStatus.REJECTED: Trigger.REJECT,
}


def next_state(state: S, trigger: Trigger) -> S:
    """The state ``trigger`` moves ``state`` to; raises IllegalTransitionError if none."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise IllegalTransitionError(
            f"illegal transition {state.value} --{trigger.value}-->",
            details={"state": state.value, "trigger": trigger.value},
        ) from None


def can_transition(state: S, trigger: Trigger) -> bool:
    return (state, trigger) in TRANSITIONS


def state_for_venue_status(status: VenueOrderStatus) -> S:
    """The daemon state matching a venue status (REJECTED maps to REJECTED)."""
    trigger = VENUE_STATUS_TRIGGER[status]
    return S.REJECTED if trigger is Trigger.REJECT else _LIVE_MOVES[trigger]
