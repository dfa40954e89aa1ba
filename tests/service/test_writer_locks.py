"""OrderWriter keeps a per-order lock only while an update holds or awaits it."""

from __future__ import annotations

import asyncio

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
