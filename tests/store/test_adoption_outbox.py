"""An adopted order's ``order.created`` survives a crash at adoption (issue 15).

Adoption (reconciliation recording a venue order this daemon did not place) used to
claim the order and then publish its event directly: a crash in between kept the order
and lost the event for good (after a restart the order looks known). Now the writer
stores the event in the outbox with the order, in one store step; the restarted
daemon's relay publishes it. On every backend.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from oexec.models import OrderType, Side, TimeInForce, VenueOrder, VenueOrderStatus
from oexec.service.market import MarketState
from oexec.service.outbox import OutboxRelay
from oexec.service.ports import OrderStore
from oexec.service.reconcile import ADOPT_TTL_S, Reconciler, adopted_order
from oexec.service.resolver import ResolverPolicy, UnknownOutcomeResolver
from oexec.service.tracker import OrderTracker
from oexec.service.writer import OrderWriter

from ..service.fakes import RecordingSink, ScriptedVenue


class Crash(BaseException):
    """The process dying: nothing after it runs."""


class DyingSink(RecordingSink):
    async def publish(self, topic: str, payload: dict[str, Any]) -> int:
        raise Crash


def _venue_order() -> VenueOrder:
    """An open order placed by hand on the venue."""
    return VenueOrder(
        symbol="BTCUSDT",
        exchange_order_id="77",
        client_order_id="placed-by-hand-1",
        status=VenueOrderStatus.NEW,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.005"),
        executed_quantity=Decimal(0),
        price=Decimal("48000"),
        average_price=Decimal(0),
        cumulative_quote=Decimal(0),
        update_time=1_700_000_000_000,
        time_in_force=TimeInForce.GTC,
    )


def _reconciler(store: OrderStore, sink: RecordingSink) -> Reconciler:
    venue = ScriptedVenue()
    writer = OrderWriter(store, sink)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price))
    resolver = UnknownOutcomeResolver(venue, writer, ResolverPolicy())
    return Reconciler(store, venue, writer, tracker, resolver)


async def test_an_adopted_orders_event_survives_a_crash_at_adoption(store: OrderStore) -> None:
    seen = _venue_order()
    with pytest.raises(Crash):  # stored, then the process dies before publishing
        await _reconciler(store, DyingSink()).adopt(seen)
    order = await store.get_by_client_order_id(seen.client_order_id)
    assert order is not None and order.request_id == "adopted:placed-by-hand-1"

    # the next start: its relay publishes what the store holds (a minute later)
    sink = RecordingSink()
    relay = OutboxRelay(store, sink, clock=lambda: time.time() + 60)
    assert await relay.redeliver(older_than_s=0) == 1
    ((topic, payload),) = sink.events
    assert topic == "order.created" and payload["adopted"] is True
    assert payload["redelivered"] is True
    assert payload["order"]["client_order_id"] == "placed-by-hand-1"


async def test_an_order_is_adopted_once(store: OrderStore) -> None:
    first, second = RecordingSink(), RecordingSink()
    mine = adopted_order(_venue_order(), int(time.time() * 1000))
    peers = adopted_order(_venue_order(), int(time.time() * 1000))  # its own order id
    assert await OrderWriter(store, first).adopt(mine, ADOPT_TTL_S)
    assert not await OrderWriter(store, second).adopt(peers, ADOPT_TTL_S)
    assert first.topics() == ["order.created"] and second.events == []
