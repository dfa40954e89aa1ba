"""The outbox and owed-fills part of the OrderStore contract, on every backend.

What it protects: a change's events are stored in the same atomic step as the change
(so a crash cannot keep one without the other), stay until acknowledged, and are handed
out again only after a grace period.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from oexec.errors import StoreConflictError
from oexec.models import OrderState
from oexec.service.ports import OrderStore, outbox_id_for_fill, outbox_id_for_order

from .helpers import evolve, make_fill, make_order

TTL = 86_400
LATER_MS = 2**50  # "older than" a time far ahead: every pending entry


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _pending(store: OrderStore) -> dict[str, bytes]:
    return {e.id: e.body for e in await store.outbox_take(LATER_MS)}


async def test_save_stores_events_reply_and_owed_mark_with_the_change(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    filled = evolve(order, state=OrderState.FILLED, filled_quantity=order.quantity)
    await store.save(filled, events=b"ev-2", reply=b"reply-2", reply_ttl_s=60, owes_fills=True)
    assert await store.get(order.id) == filled
    assert await _pending(store) == {outbox_id_for_order(filled): b"ev-2"}
    assert await store.get_reply(order.request_id) == b"reply-2"
    assert await store.owed_fills() == [order.id]


async def test_a_lost_save_stores_none_of_its_effects(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    stale = evolve(order, state=OrderState.NEW, version=5)  # not stored version + 1
    with pytest.raises(StoreConflictError):
        await store.save(stale, events=b"ev", reply=b"r", reply_ttl_s=60, owes_fills=True)
    assert await _pending(store) == {}
    assert await store.get_reply(order.request_id) is None
    assert await store.owed_fills() == []


async def test_save_without_effects_writes_no_entry(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    await store.save(evolve(order, state=OrderState.NEW, version=2))
    assert await _pending(store) == {}
    assert await store.owed_fills() == []


async def test_claim_stores_its_events_only_when_it_wins(store: OrderStore) -> None:
    rejected = make_order(request_id="r-x", state=OrderState.REJECTED)
    assert (await store.claim(rejected, TTL, events=b"rejected")).claimed
    loser = make_order(request_id="r-x", state=OrderState.REJECTED)
    assert not (await store.claim(loser, TTL, events=b"loser")).claimed
    assert await _pending(store) == {outbox_id_for_order(rejected): b"rejected"}


async def test_only_a_new_fill_stores_its_event(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    fill = make_fill(order, 7)
    assert await store.add_fill(fill, events=b"fill-7")
    assert not await store.add_fill(fill, events=b"fill-7-again")
    assert await _pending(store) == {outbox_id_for_fill(fill): b"fill-7"}


async def test_take_hands_out_old_entries_once_per_grace_period(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    await store.add_fill(make_fill(order, 1), events=b"a")
    written_before = _now_ms() + 1
    assert await store.outbox_take(written_before - 60_000) == []  # too young
    await asyncio.sleep(0.01)  # the take's own stamp (now) lies after the cutoff
    taken = await store.outbox_take(written_before)
    assert [e.body for e in taken] == [b"a"]
    # re-stamped when taken: another taker with the same cutoff does not get it again
    assert await store.outbox_take(written_before) == []
    assert [e.body for e in await store.outbox_take(LATER_MS)] == [b"a"]


async def test_take_respects_the_limit_oldest_first(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    for n in range(5):
        await store.add_fill(make_fill(order, n), events=f"e{n}".encode())
        await asyncio.sleep(0.002)  # distinct stamps
    first = await store.outbox_take(LATER_MS, 2)
    assert [e.body for e in first] == [b"e0", b"e1"]


async def test_ack_forgets_entries_and_ignores_unknown_ids(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    one, two = make_fill(order, 1), make_fill(order, 2)
    await store.add_fill(one, events=b"1")
    await store.add_fill(two, events=b"2")
    await store.outbox_ack([outbox_id_for_fill(one), "f:nope:0"])
    await store.outbox_ack([])
    assert await _pending(store) == {outbox_id_for_fill(two): b"2"}


async def test_owed_fills_until_settled(store: OrderStore) -> None:
    a, b = make_order(1), make_order(2)
    for order in (a, b):
        await store.claim(order, TTL)
        part = evolve(order, state=OrderState.PARTIALLY_FILLED, filled_quantity=Decimal("0.001"))
        await store.save(part, owes_fills=True)
    assert await store.owed_fills() == sorted([a.id, b.id])
    await store.settle_fills(a.id)
    await store.settle_fills("never-owed")
    assert await store.owed_fills() == [b.id]
