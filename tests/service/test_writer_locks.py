"""OrderWriter keeps a per-order lock only while an update holds or awaits it."""

from __future__ import annotations

import asyncio
from typing import Any

from oexec.models import OrderState
from oexec.service.apply import with_state
from oexec.service.writer import OrderWriter

from ..store.helpers import make_order
from .fakes import MemoryStore, RecordingSink


async def test_no_lock_outlives_its_updates_even_after_terminal_no_ops() -> None:
    store, sink = MemoryStore(), RecordingSink()
    writer = OrderWriter(store, sink)
    for n in range(50):
        order = make_order(n)
        await store.claim(order, 60)
        done, changed = await writer.update(
            order, lambda o: with_state(o, OrderState.FILLED, o.updated_at + 1), reason="fill"
        )
        assert changed and done.state is OrderState.FILLED
        # a late stream event for a terminal order: no change, and no lock left behind
        _, changed = await writer.update(done, lambda _o: None, reason="late event")
        assert not changed
    assert writer._locks == {}


async def test_concurrent_updates_of_one_order_still_run_one_at_a_time() -> None:
    store, sink = MemoryStore(), RecordingSink()
    writer = OrderWriter(store, sink)
    order = make_order(1)
    await store.claim(order, 60)
    inside = 0
    most = 0

    def change(current):  # type: ignore[no-untyped-def]
        return None

    async def one() -> None:
        nonlocal inside, most
        async with writer._serialised(order.id):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(10)))
    assert most == 1 and writer._locks == {}
    assert (await writer.update(order, change, reason="x"))[1] is False


async def test_two_writers_landing_identical_bytes_announce_once() -> None:
    """Two stale writers applying the same venue view in the same ms produce identical
    bytes; a store may report the second save as already landed: announce only once."""
    from decimal import Decimal

    import attrs

    from oexec.models import OrderState, OrderType, Side
    from oexec.models.order import Order
    from oexec.service.writer import OrderWriter

    from .fakes import MemoryStore, RecordingSink

    class IdempotentStore(MemoryStore):
        async def save(self, order: Order, *, reason: str = "", **effects: Any) -> None:
            if self.orders.get(order.id) == order:
                return  # identical bytes already stored: a "retried" save
            await super().save(order, reason=reason, **effects)

    store, sink = IdempotentStore(), RecordingSink()
    writer = OrderWriter(store, sink)
    base = Order(
        id="o1",
        request_id="r1",
        client_order_id="c1",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=Decimal("1"),
        state=OrderState.NEW,
        created_at=1,
        updated_at=1,
        version=1,
    )
    store.orders[base.id] = base
    filled = attrs.evolve(
        base, state=OrderState.FILLED, filled_quantity=Decimal("1"), updated_at=5, version=2
    )
    await writer.update(base, lambda _o: filled, reason="stream")
    await writer.update(base, lambda o: filled if o.version == 1 else None, reason="sweep")
    assert sink.topics().count("order.filled") == 1
