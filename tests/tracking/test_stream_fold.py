"""Stream events whose effect the order already has are folded in without a store call
(issue 14): the tracker's ``fold``, on the same base ``OrderWriter.update`` would use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from oexec.errors import StoreError
from oexec.models import Order, OrderState, OrderUpdate, Side, VenueOrder, VenueOrderStatus
from oexec.models.venue import VenueTrade
from oexec.service.apply import apply_venue_order
from oexec.service.journal import Journal
from oexec.service.market import MarketState
from oexec.service.tracker import OrderTracker
from oexec.service.writer import OrderWriter

from ..service.fakes import MemoryStore, RecordingSink, ScriptedVenue
from ..store.helpers import make_order


class CountingStore(MemoryStore):
    """Counts order writes and reads (what a folded event must not cost)."""

    order_writes = 0
    reads = 0

    async def save(self, order: Order, **kwargs: Any) -> Any:
        self.order_writes += 1
        return await super().save(order, **kwargs)

    async def get_by_client_order_id(self, client_order_id: str) -> Order | None:
        self.reads += 1
        return await super().get_by_client_order_id(client_order_id)


def _venue_view(order: Order, status: VenueOrderStatus, executed: str, at: int) -> VenueOrder:
    return VenueOrder(
        symbol=order.symbol,
        exchange_order_id="1000",
        client_order_id=order.client_order_id,
        status=status,
        side=order.side,
        type=order.type,
        quantity=order.quantity,
        executed_quantity=Decimal(executed),
        price=order.price or Decimal(0),
        average_price=Decimal("50000.10") if executed != "0" else Decimal(0),
        cumulative_quote=Decimal(0),
        update_time=at,
    )


def _event(view: VenueOrder, execution: str, trade_id: int | None = None) -> OrderUpdate:
    trade = None
    if trade_id is not None:
        trade = VenueTrade(
            symbol=view.symbol, trade_id=trade_id, exchange_order_id=view.exchange_order_id,
            client_order_id=view.client_order_id, side=Side.BUY, price=Decimal("50000.10"),
            quantity=view.executed_quantity, commission=Decimal(0), commission_asset="USDT",
            is_maker=False, realized_pnl=Decimal(0), time=view.update_time,
        )  # fmt: skip
    return OrderUpdate(
        order=view,
        execution_type=execution,
        event_time=view.update_time,
        transaction_time=view.update_time,
        trade=trade,
    )


async def _settled() -> tuple[CountingStore, OrderWriter, OrderTracker, Journal, Order]:
    """An order the submit's answer already stored as FILLED (as a MARKET order is)."""
    store, venue = CountingStore(), ScriptedVenue()
    writer = OrderWriter(store, RecordingSink())
    journal = Journal(store)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price), journal=journal)
    order = make_order()
    await store.claim(order, 60)
    answer = _venue_view(order, VenueOrderStatus.FILLED, "0.010", at=5)
    filled, _ = await writer.update(
        order, lambda o: apply_venue_order(o, answer, 5), reason="venue accepted"
    )
    store.order_writes = store.reads = 0
    return store, writer, tracker, journal, filled


async def _stream(*events: OrderUpdate) -> AsyncIterator[OrderUpdate]:
    for event in events:
        yield event
    await asyncio.sleep(0.05)  # the runner cancels what is still applying when it ends


def _journaled(journal: Journal, coid: str) -> list[str]:
    return [orjson.loads(line)["execution_type"] for line in journal._pending.get(coid, [])]


async def test_events_repeating_the_stored_answer_cost_no_store_call_and_are_journaled() -> None:
    store, writer, tracker, journal, filled = await _settled()
    new = _event(_venue_view(filled, VenueOrderStatus.NEW, "0", at=4), "NEW")
    done = _event(_venue_view(filled, VenueOrderStatus.FILLED, "0.010", at=5), "CALCULATED")
    tasks_before = len(asyncio.all_tasks())
    assert tracker.fold(new) and tracker.fold(done)
    assert len(asyncio.all_tasks()) == tasks_before  # taken in at once
    await asyncio.wait_for(tracker.run(_stream(new, done)), 5)
    assert store.order_writes == 0 and store.reads == 0
    assert writer.recent(filled.client_order_id) == filled
    assert _journaled(journal, filled.client_order_id) == ["NEW", "CALCULATED"] * 2
    assert tracker.last_event_ms == 5


async def test_an_event_that_changes_the_order_is_stored_and_announced() -> None:
    store, venue = CountingStore(), ScriptedVenue()
    sink = RecordingSink()
    writer = OrderWriter(store, sink)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price))
    order = make_order()
    await store.claim(order, 60)
    writer._remember(order)
    new = _event(_venue_view(order, VenueOrderStatus.NEW, "0", at=4), "NEW")
    assert not tracker.fold(new)  # SUBMITTING -> NEW is a change
    await asyncio.wait_for(tracker.run(_stream(new)), 5)
    stored = await store.get(order.id)
    assert stored is not None and stored.state is OrderState.NEW and store.order_writes == 1
    assert sink.topics() == ["order.created"]


async def test_a_trade_is_never_folded_and_is_stored_once() -> None:
    store, _, tracker, _, filled = await _settled()
    trade = _event(_venue_view(filled, VenueOrderStatus.FILLED, "0.010", at=5), "TRADE", 77)
    assert not tracker.fold(trade)
    await asyncio.wait_for(tracker.run(_stream(trade, trade)), 5)
    assert [f.trade_id for f in await store.fills(filled.id)] == [77]
    assert store.order_writes == 0  # the order itself had the fill already


async def test_no_fold_while_an_update_of_the_order_runs_with_nothing_being_stored() -> None:
    """A running update may change the order: the event waits for it, the long way."""
    _, writer, tracker, _, filled = await _settled()
    done = _event(_venue_view(filled, VenueOrderStatus.FILLED, "0.010", at=5), "CALCULATED")
    async with writer._serialised(filled.id):
        assert writer.writing(filled.id) and not tracker.fold(done)
    assert not writer.writing(filled.id) and tracker.fold(done)


async def test_an_event_behind_a_pending_one_of_its_order_keeps_stream_order() -> None:
    """A foldable event of an order whose earlier event is still being applied is not
    taken in ahead of it: the journal shows the venue's order of events."""
    store, writer, tracker, journal, filled = await _settled()
    gate = asyncio.Event()
    add_fill = store.add_fill

    async def slow_add_fill(fill: Any, **kwargs: Any) -> bool:
        await gate.wait()
        return await add_fill(fill, **kwargs)

    store.add_fill = slow_add_fill  # type: ignore[method-assign]
    trade = _event(_venue_view(filled, VenueOrderStatus.FILLED, "0.010", at=5), "TRADE", 77)
    repeat = attrs.evolve(trade, execution_type="CALCULATED", trade=None)
    other = await _other_settled_order(store, writer)
    store.order_writes = 0
    other_done = _event(_venue_view(other, VenueOrderStatus.FILLED, "0.010", at=5), "NEW")

    async def events() -> AsyncIterator[OrderUpdate]:
        yield trade
        yield repeat
        yield other_done
        await asyncio.sleep(0.05)
        assert _journaled(journal, other.client_order_id) == ["NEW"]  # not held up
        gate.set()
        await asyncio.sleep(0.05)

    await asyncio.wait_for(tracker.run(events()), 5)
    assert _journaled(journal, filled.client_order_id) == ["TRADE", "CALCULATED"]
    assert [f.trade_id for f in await store.fills(filled.id)] == [77]
    assert store.order_writes == 0  # the repeat was folded in by the order's own task


async def _other_settled_order(store: CountingStore, writer: OrderWriter) -> Order:
    order = make_order(2)
    await store.claim(order, 60)
    answer = _venue_view(order, VenueOrderStatus.FILLED, "0.010", at=5)
    stored, _ = await writer.update(
        order, lambda o: apply_venue_order(o, answer, 5), reason="venue accepted"
    )
    return stored


# --- events folded on the version being stored (the submit's answer, usually) -------------
class GatedStore(CountingStore):
    """``save`` waits for ``gate``, then fails if ``fail`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail = False

    async def save(self, order: Order, **kwargs: Any) -> Any:
        await self.gate.wait()
        if self.fail:
            raise StoreError("store unreachable")
        return await super().save(order, **kwargs)


async def _answer_being_stored(
    status: VenueOrderStatus, executed: str
) -> tuple[GatedStore, OrderWriter, OrderTracker, Journal, Order, asyncio.Task[Any]]:
    store, venue = GatedStore(), ScriptedVenue()
    writer = OrderWriter(store, RecordingSink())
    journal = Journal(store)
    tracker = OrderTracker(store, venue, writer, MarketState(venue.mark_price), journal=journal)
    order = make_order()
    await store.claim(order, 60)
    writer._remember(order)
    answer = _venue_view(order, status, executed, at=5)
    storing = asyncio.get_running_loop().create_task(
        writer.update(order, lambda o: apply_venue_order(o, answer, 5), reason="venue accepted")
    )
    for _ in range(5):
        await asyncio.sleep(0)
    assert writer.writing(order.id) and writer.landing(order.client_order_id) is not None
    return store, writer, tracker, journal, order, storing


async def test_an_event_the_answer_being_stored_covers_is_folded_and_rides_until_it_lands() -> None:
    store, _, tracker, journal, order, storing = await _answer_being_stored(
        VenueOrderStatus.FILLED, "0.010"
    )
    new = _event(_venue_view(order, VenueOrderStatus.NEW, "0", at=4), "NEW")
    assert tracker.fold(new)
    assert _journaled(journal, order.client_order_id) == ["NEW"]
    tracker.check_riding()  # still being stored: nothing owed yet
    assert not tracker._recovery_owed and tracker._riding
    store.gate.set()
    stored, changed = await storing
    assert changed and stored.state is OrderState.FILLED and store.order_writes == 1
    assert not tracker._riding  # landed: the writer told the tracker
    tracker.check_riding()
    assert not tracker._recovery_owed


async def test_an_event_that_rode_on_a_failed_save_makes_a_recovery_owed() -> None:
    store, writer, tracker, _, order, storing = await _answer_being_stored(
        VenueOrderStatus.FILLED, "0.010"
    )
    new = _event(_venue_view(order, VenueOrderStatus.NEW, "0", at=4), "NEW")
    assert tracker.fold(new)
    store.fail = True
    store.gate.set()
    with pytest.raises(StoreError):
        await storing
    assert writer.landing(order.client_order_id) is None and not writer.writing(order.id)
    assert not tracker._recovery_owed
    tracker.check_riding()
    assert tracker._recovery_owed and not tracker._riding


async def test_an_event_beyond_the_answer_being_stored_waits_and_is_stored() -> None:
    store, _, tracker, _, order, storing = await _answer_being_stored(VenueOrderStatus.NEW, "0")
    done = _event(_venue_view(order, VenueOrderStatus.FILLED, "0.010", at=6), "CALCULATED")
    assert not tracker.fold(done)  # FILLED is news even after the NEW being stored
    applying = asyncio.get_running_loop().create_task(tracker.on_order_update(done))
    store.gate.set()
    await storing
    await applying
    stored = await store.get(order.id)
    assert stored is not None and stored.state is OrderState.FILLED and store.order_writes == 2
    assert not tracker._riding
