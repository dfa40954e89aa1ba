"""The audit journal's queue on a real store: flat under sustained load, nothing dropped.

Why: the journal writes off the hot path, so the only thing that keeps its memory flat is
that a flush drains the whole queue in one store call. This drives many orders' entries
through at a steady rate and checks the queue never exceeds what arrives between flushes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import orjson

from oexec.service.journal import Journal, build_trace
from oexec.service.ports import OrderStore

from ..service.fakes import MemoryStore
from .helpers import make_order

ORDERS = 600
ENTRIES_PER_ORDER = 3
BOUND = 300  # far below what an unflushed run would queue (1,800)


async def test_sustained_records_stay_bounded_and_none_is_dropped(store: OrderStore) -> None:
    journal = Journal(store, max_pending=BOUND)
    journal.start()
    peak = 0
    try:
        for i in range(ORDERS):
            for n in range(ENTRIES_PER_ORDER):
                journal.record(f"coid-{i}", "request", n=n)
            peak = max(peak, journal.pending)
            if i % 5 == 4:  # ≈ 5,000 orders/s, issue 10's throughput target
                await asyncio.sleep(0.001)
        await journal.stop()
    finally:
        await journal.stop()
    assert journal.dropped == 0
    assert peak < BOUND
    assert journal.pending == 0
    for i in (0, ORDERS // 2, ORDERS - 1):
        kept = [orjson.loads(e) for e in await store.journal(f"coid-{i}")]
        assert [e["n"] for e in kept] == list(range(ENTRIES_PER_ORDER))


async def test_a_full_queue_drops_and_counts(store: OrderStore) -> None:
    journal = Journal(store, max_pending=5)
    for n in range(8):
        journal.record("coid-full", "request", n=n)
    assert journal.pending == 5
    assert journal.dropped == 3
    await journal.flush()
    assert journal.pending == 0
    assert len(await store.journal("coid-full")) == 5


async def test_stop_during_a_flush_loses_nothing() -> None:
    """A batch being written when the journal stops is written, not cancelled."""

    class SlowStore(MemoryStore):
        writing = asyncio.Event()

        async def append_journal_many(self, batch: Any) -> None:
            self.writing.set()
            await asyncio.sleep(0.05)
            await super().append_journal_many(batch)

    store = SlowStore()
    journal = Journal(store, max_pending=BOUND)
    journal.start()
    journal.record("coid-slow", "request", n=0)
    await store.writing.wait()  # the batch is off the queue, its write in flight
    journal.record("coid-slow", "request", n=1)
    await journal.stop()
    kept = [orjson.loads(e)["n"] for e in await store.journal("coid-slow")]
    assert kept == [0, 1] and journal.dropped == 0


async def test_a_flush_lingers_for_company_but_not_past_a_full_batch_or_a_reader() -> None:
    """Entries wait up to ``linger_s`` to share a store call (not one call per loop turn);
    ``flush_at`` entries go at once, and a trace flushes before it reads."""

    class CountingStore(MemoryStore):
        calls = 0

        async def append_journal_many(self, batch: Any) -> None:
            self.calls += 1
            await super().append_journal_many(batch)

    store = CountingStore()
    journal = Journal(store, linger_s=30.0, flush_at=4)
    journal.start()
    try:
        for n in range(3):
            journal.record("coid-a", "request", n=n)
            await asyncio.sleep(0.01)  # three loop turns: three flushes without the linger
        assert store.calls == 0 and journal.pending == 3
        journal.record("coid-a", "request", n=3)  # the fourth fills the batch
        for _ in range(100):
            if store.calls:
                break
            await asyncio.sleep(0.01)
        assert store.calls == 1 and journal.pending == 0
        journal.record("coid-a", "response", n=4)
        order = attrs.evolve(make_order(), client_order_id="coid-a")
        trace = await build_trace(store, order, journal)
        assert [e["n"] for e in trace["journal"]] == [0, 1, 2, 3, 4]
    finally:
        await journal.stop()
