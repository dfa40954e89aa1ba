"""The outbox relay and the writer's use of it: events stored with the change,
acknowledged once out, redelivered (flagged) when a crash left them pending."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import attrs

from oexec.models import Order, OrderState, OrderType, Side
from oexec.service.outbox import (
    OutboxRelay,
    fill_events,
    order_events,
    pack_events,
    unpack_events,
)
from oexec.service.ports import outbox_id_for_order
from oexec.service.writer import OrderWriter

from ..ops import factories
from .fakes import MemoryStore, RecordingSink


def _order(state: OrderState = OrderState.SUBMITTING, version: int = 1, **kw: object) -> Order:
    fields: dict[str, object] = {
        "id": "o1",
        "request_id": "r1",
        "client_order_id": "c1",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "type": OrderType.MARKET,
        "quantity": Decimal("0.002"),
        "state": state,
        "created_at": 1,
        "updated_at": 1,
        "version": version,
        **kw,
    }
    return Order(**fields)  # type: ignore[arg-type]


def test_order_events_follow_the_daemons_one_table() -> None:
    before = _order()
    filled = _order(OrderState.FILLED, 2, filled_quantity=Decimal("0.002"))
    topics = [t for t, _ in order_events(before, filled)]
    assert topics == ["order.created", "order.filled"]  # SUBMITTING -> FILLED at once
    assert order_events(None, _order()) == []  # a claim announces nothing
    rejected = order_events(None, _order(OrderState.REJECTED))
    assert [t for t, _ in rejected] == ["order.rejected"]
    _, payload = order_events(before, filled)[0]
    assert payload["previous_state"] == "SUBMITTING" and payload["order"]["version"] == 2


def test_events_round_trip() -> None:
    events = order_events(_order(), _order(OrderState.NEW, 2))
    assert unpack_events(pack_events(events)) == events


async def test_writer_stores_events_owed_mark_and_reply_in_the_save() -> None:
    store, sink = MemoryStore(), RecordingSink()
    writer = OrderWriter(store, sink)
    order = _order()
    await store.claim(order, 60)
    filled = attrs.evolve(
        order, state=OrderState.FILLED, version=2, filled_quantity=Decimal("0.002")
    )
    await writer.commit(order, filled, reason="test", reply_ttl_s=60)
    entry = store.outbox[outbox_id_for_order(filled)]
    assert [t for t, _ in unpack_events(entry)] == ["order.created", "order.filled"]
    assert sink.topics() == ["order.created", "order.filled"]
    assert store.owed == {"o1"} and b'"FILLED"' in store.replies["r1"]
    assert await writer.relay.flush() == 1
    assert store.outbox == {}


async def test_a_state_change_without_fills_owes_none() -> None:
    store, sink = MemoryStore(), RecordingSink()
    writer = OrderWriter(store, sink)
    order = _order()
    await store.claim(order, 60)
    await writer.commit(order, attrs.evolve(order, state=OrderState.NEW, version=2), reason="t")
    assert store.owed == set() and store.replies == {}


async def test_redelivery_publishes_pending_entries_flagged_and_acks_them() -> None:
    store, sink = MemoryStore(), RecordingSink()
    fill_entry = pack_events(
        [("fill", {"fill": {"symbol": "BTCUSDT", "trade_id": 9, "qty": "0.001"}})]
    )
    store.outbox = {"f:BTCUSDT:9": fill_entry, "bad": b"\xc1not msgpack"}
    relay = OutboxRelay(store, sink)
    waited: list[bool] = []

    async def before() -> None:
        waited.append(True)

    assert await relay.redeliver(older_than_s=0, before_publish=before) == 1
    assert waited == [True]
    fill = {"symbol": "BTCUSDT", "trade_id": 9, "qty": "0.001"}
    assert sink.events == [("fill", {"fill": fill, "redelivered": True})]
    assert "bad" not in store.outbox  # unreadable: dropped, not retried forever
    await relay.flush()
    assert store.outbox == {}
    # nothing pending: the hook is not awaited
    assert await relay.redeliver(older_than_s=0, before_publish=before) == 0
    assert waited == [True]


async def test_redelivery_skips_entries_this_process_published_but_not_acked() -> None:
    store, sink = MemoryStore(), RecordingSink()
    relay = OutboxRelay(store, sink)
    events = fill_events_for(1)
    store.outbox["f:BTCUSDT:1"] = pack_events(events)
    await relay.publish("f:BTCUSDT:1", events)
    assert await relay.redeliver(older_than_s=0) == 0
    assert len(sink.events) == 1


def fill_events_for(trade_id: int) -> list[tuple[str, dict[str, object]]]:
    return [("fill", {"fill": {"symbol": "BTCUSDT", "trade_id": trade_id}})]


async def test_acks_wait_for_the_sink_to_have_the_events_out() -> None:
    class SlowSink(RecordingSink):
        def __init__(self) -> None:
            super().__init__()
            self.out = asyncio.Event()

        async def flush(self) -> None:
            await self.out.wait()

    store, sink = MemoryStore(), SlowSink()
    relay = OutboxRelay(store, sink)
    store.outbox["f:BTCUSDT:1"] = b"x"
    await relay.publish("f:BTCUSDT:1", fill_events_for(1))
    flushing = asyncio.create_task(relay.flush())
    await asyncio.sleep(0.01)
    assert "f:BTCUSDT:1" in store.outbox  # not out yet: not acknowledged
    sink.out.set()
    assert await flushing == 1
    assert store.outbox == {}


async def test_close_gives_up_after_its_timeout_and_leaves_entries_pending() -> None:
    class StuckSink(RecordingSink):
        async def flush(self) -> None:
            await asyncio.sleep(3600)

    store, sink = MemoryStore(), StuckSink()
    relay = OutboxRelay(store, sink)
    store.outbox["f:BTCUSDT:1"] = b"x"
    await relay.publish("f:BTCUSDT:1", fill_events_for(1))
    await relay.close(timeout_s=0.05)
    assert "f:BTCUSDT:1" in store.outbox  # redelivered by the next start


def test_fill_events_carry_the_fill() -> None:
    fill = attrs.evolve(factories.fill(is_maker=False), price=Decimal("100.5"))
    [(topic, body)] = fill_events(fill)
    assert topic == "fill" and body["fill"]["price"] == "100.5"
    assert body["fill"]["trade_id"] == fill.trade_id


async def test_recent_orders_are_a_hint_the_compare_and_set_corrects() -> None:
    """The tracker bases stream updates on the writer's in-memory copy (no store read);
    a copy made stale by another daemon's write costs a retry, never a lost change."""
    store, sink = MemoryStore(), RecordingSink()
    here, there = OrderWriter(store, sink), OrderWriter(store, sink)
    order = _order()
    await here.claim(order, 60)
    new = attrs.evolve(order, state=OrderState.NEW, version=2)
    await here.commit(order, new, reason="venue accepted")
    assert here.recent("c1") == new
    part = attrs.evolve(
        new, state=OrderState.PARTIALLY_FILLED, version=3, filled_quantity=Decimal("0.001")
    )
    await there.commit(new, part, reason="another daemon")
    stale = here.recent("c1")
    assert stale is not None and stale.version == 2
    stored, changed = await here.update(
        stale,
        lambda o: attrs.evolve(o, state=OrderState.CANCELED, version=o.version + 1),
        reason="stream",
    )
    assert changed and stored.version == 4
    assert stored.filled_quantity == Decimal("0.001")  # built on the newer version
    assert here.recent("c1") == stored
