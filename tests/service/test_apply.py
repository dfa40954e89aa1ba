from decimal import Decimal

import attrs
import pytest

from oexec.models import Order, OrderState, OrderType, Side, VenueOrder, VenueOrderStatus
from oexec.service.apply import apply_venue_order, event_topics, with_state

S = OrderState


def order(state: S = S.SUBMITTING, filled: str = "0", version: int = 1) -> Order:
    return Order(
        id="o1",
        request_id="r1",
        client_order_id="c1",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        state=state,
        created_at=1,
        updated_at=1,
        price=Decimal("50000.0"),
        filled_quantity=Decimal(filled),
        version=version,
    )


def venue(status: VenueOrderStatus, executed: str = "0", t: int = 10, avg: str = "0") -> VenueOrder:
    return VenueOrder(
        symbol="BTCUSDT",
        exchange_order_id="42",
        client_order_id="c1",
        status=status,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        executed_quantity=Decimal(executed),
        price=Decimal("50000.0"),
        average_price=Decimal(avg),
        cumulative_quote=Decimal(executed) * Decimal(avg),
        update_time=t,
    )


def test_accept_moves_to_new_and_bumps_version() -> None:
    updated = apply_venue_order(order(), venue(VenueOrderStatus.NEW), now_ms=5)
    assert updated is not None
    assert (updated.state, updated.exchange_order_id, updated.version) == (S.NEW, "42", 2)
    assert updated.updated_at == 5


def test_partial_then_fill_accumulates_and_averages() -> None:
    partial = apply_venue_order(
        order(S.NEW), venue(VenueOrderStatus.PARTIALLY_FILLED, "0.004", avg="50000.0"), 5
    )
    assert partial is not None and partial.state is S.PARTIALLY_FILLED
    assert partial.filled_quantity == Decimal("0.004")
    filled = apply_venue_order(partial, venue(VenueOrderStatus.FILLED, "0.010", 11, "49999.5"), 6)
    assert filled is not None and filled.state is S.FILLED
    assert filled.average_price == Decimal("49999.5")


def test_stale_and_duplicate_views_change_nothing() -> None:
    partial = order(S.PARTIALLY_FILLED, filled="0.004")
    assert apply_venue_order(partial, venue(VenueOrderStatus.NEW, "0"), 5) is None
    assert apply_venue_order(partial, venue(VenueOrderStatus.PARTIALLY_FILLED, "0.002"), 5) is None
    done = order(S.FILLED, filled="0.010")
    assert apply_venue_order(done, venue(VenueOrderStatus.FILLED, "0.010"), 5) is None
    assert apply_venue_order(done, venue(VenueOrderStatus.CANCELED, "0.010"), 5) is None


def test_older_event_at_same_fill_level_is_ignored() -> None:
    current = apply_venue_order(order(), venue(VenueOrderStatus.NEW, t=100), 5)
    assert current is not None
    assert apply_venue_order(current, venue(VenueOrderStatus.NEW, t=50), 6) is None


def test_unknown_resolves_to_venue_truth() -> None:
    resolved = apply_venue_order(
        order(S.UNKNOWN), venue(VenueOrderStatus.FILLED, "0.010", avg="1"), 5
    )
    assert resolved is not None and resolved.state is S.FILLED


def test_with_state_keeps_errors_and_versions() -> None:
    rejected = with_state(order(), S.REJECTED, 9, error_code="VENUE_REJECTED", error_message="no")
    assert (rejected.state, rejected.version, rejected.error_code) == (
        S.REJECTED,
        2,
        "VENUE_REJECTED",
    )


@pytest.mark.parametrize(
    ("before", "after", "topics"),
    [
        (S.SUBMITTING, S.NEW, ["order.created"]),
        (S.SUBMITTING, S.FILLED, ["order.created", "order.filled"]),
        (S.UNKNOWN, S.EXPIRED, ["order.created", "order.canceled"]),
        (S.NEW, S.PARTIALLY_FILLED, ["order.updated"]),
        (S.PARTIALLY_FILLED, S.FILLED, ["order.filled"]),
        (S.NEW, S.CANCELED, ["order.canceled"]),
        (S.SUBMITTING, S.REJECTED, ["order.rejected"]),
        (S.SUBMITTING, S.UNKNOWN, ["order.updated"]),
    ],
)
def test_event_topics(before: S, after: S, topics: list[str]) -> None:
    assert event_topics(before, after) == topics


def test_an_amend_moves_price_and_quantity_and_a_late_older_view_does_not_undo_it() -> None:
    live = apply_venue_order(order(), venue(VenueOrderStatus.NEW, t=10), 100)
    assert live is not None and live.price == Decimal("50000.0")
    amended_view = attrs.evolve(
        venue(VenueOrderStatus.NEW, t=20), price=Decimal("49500.0"), quantity=Decimal("0.008")
    )
    amended = apply_venue_order(live, amended_view, 200)
    assert amended is not None and amended.version == live.version + 1
    assert (amended.price, amended.quantity, amended.state) == (
        Decimal("49500.0"),
        Decimal("0.008"),
        S.NEW,
    )
    # a partial fill from before the amend, delivered late: the fill counts, the terms stay
    late_fill = attrs.evolve(venue(VenueOrderStatus.PARTIALLY_FILLED, "0.002", t=15, avg="50000"))
    after = apply_venue_order(amended, late_fill, 300)
    assert after is not None and after.filled_quantity == Decimal("0.002")
    assert (after.price, after.quantity) == (Decimal("49500.0"), Decimal("0.008"))
    assert apply_venue_order(after, amended_view, 400) is None  # a repeat changes nothing


def test_the_venues_spelling_of_unchanged_terms_does_not_replace_the_clients() -> None:
    spelled = attrs.evolve(
        venue(VenueOrderStatus.NEW, t=10), price=Decimal("50000.00"), quantity=Decimal("0.01")
    )
    live = apply_venue_order(order(), spelled, 100)
    assert live is not None and live.state is S.NEW
    assert (str(live.price), str(live.quantity)) == ("50000.0", "0.010")
