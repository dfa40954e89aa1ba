import pytest

from oexec.errors import IllegalTransitionError
from oexec.models import OrderState as S
from oexec.models import VenueOrderStatus
from oexec.models.order_state import (
    TRANSITIONS,
    Trigger,
    can_transition,
    next_state,
    state_for_venue_status,
)


def test_terminal_states_have_no_way_out() -> None:
    for (state, _trigger), _target in TRANSITIONS.items():
        assert not state.is_terminal, f"{state} must be terminal"


@pytest.mark.parametrize(
    ("state", "trigger", "target"),
    [
        (S.SUBMITTING, Trigger.VENUE_NEW, S.NEW),
        (S.SUBMITTING, Trigger.UNKNOWN, S.UNKNOWN),
        (S.UNKNOWN, Trigger.VENUE_FILLED, S.FILLED),
        (S.UNKNOWN, Trigger.REJECT, S.REJECTED),
        (S.NEW, Trigger.VENUE_PARTIAL, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, Trigger.VENUE_EXPIRED, S.EXPIRED),
        (S.VALIDATING, Trigger.REJECT, S.REJECTED),
    ],
)
def test_legal_moves(state: S, trigger: Trigger, target: S) -> None:
    assert next_state(state, trigger) is target


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (S.FILLED, Trigger.VENUE_CANCELED),
        (S.CANCELED, Trigger.VENUE_FILLED),
        (S.NEW, Trigger.REJECT),
        (S.NEW, Trigger.UNKNOWN),
        (S.REJECTED, Trigger.VENUE_NEW),
        (S.PARTIALLY_FILLED, Trigger.VENUE_NEW),
        (S.INIT, Trigger.VENUE_FILLED),
    ],
)
def test_illegal_moves_are_refused(state: S, trigger: Trigger) -> None:
    assert not can_transition(state, trigger)
    with pytest.raises(IllegalTransitionError) as info:
        next_state(state, trigger)
    assert info.value.details == {"state": state.value, "trigger": trigger.value}


def test_every_venue_status_maps_to_a_state() -> None:
    assert state_for_venue_status(VenueOrderStatus.EXPIRED_IN_MATCH) is S.EXPIRED
    assert state_for_venue_status(VenueOrderStatus.REJECTED) is S.REJECTED
    for status in VenueOrderStatus:
        assert isinstance(state_for_venue_status(status), S)


def test_open_and_terminal_flags() -> None:
    assert S.UNKNOWN.is_open and S.SUBMITTING.is_open and S.NEW.is_open
    assert not S.PENDING.is_open and not S.FILLED.is_open
    assert {s for s in S if s.is_terminal} == {S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}
