"""The OrderStore contract, run against every backend (real Redis and SQLite)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from oexec.errors import ErrorCode, StoreConflictError
from oexec.models import OrderState
from oexec.service.ports import OrderStore
from oexec.store.keys import JOURNAL_MAX_ENTRIES

from .helpers import BASE_MS, evolve, make_fill, make_order

TTL = 86_400


# --- claim ----------------------------------------------------------------------------
async def test_claim_wins_and_order_is_found_by_every_key(store: OrderStore) -> None:
    order = make_order()
    result = await store.claim(order, TTL)
    assert result.claimed and result.order == order and result.reply is None
    assert await store.get(order.id) == order
    assert await store.get_by_request_id(order.request_id) == order
    assert await store.get_by_client_order_id(order.client_order_id) == order


async def test_decimals_round_trip_exactly(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    stored = await store.get(order.id)
    assert stored is not None
    assert str(stored.quantity) == "0.010" and stored.price == Decimal("50000.10")


async def test_lookups_of_unknown_keys_return_none(store: OrderStore) -> None:
    assert await store.get("nope") is None
    assert await store.get_by_request_id("nope") is None
    assert await store.get_by_client_order_id("nope") is None
    assert await store.get_reply("nope") is None
    assert await store.state_history("nope") == []
    assert await store.fills("nope") == []


async def test_second_claim_loses_and_gets_the_first_order_and_reply(store: OrderStore) -> None:
    first = make_order(request_id="r-dup")
    second = make_order(request_id="r-dup")
    assert (await store.claim(first, TTL)).claimed
    lost = await store.claim(second, TTL)
    assert not lost.claimed and lost.order == first and lost.reply is None
    assert await store.get(second.id) is None

    await store.save_reply("r-dup", b"final-reply", TTL)
    again = await store.claim(make_order(request_id="r-dup"), TTL)
    assert not again.claimed and again.reply == b"final-reply"


async def test_fifty_concurrent_claims_have_exactly_one_winner(store: OrderStore) -> None:
    orders = [make_order(request_id="r-race") for _ in range(50)]
    results = await asyncio.gather(*(store.claim(o, TTL) for o in orders))
    winners = [r for r in results if r.claimed]
    assert len(winners) == 1
    winner_id = winners[0].order.id
    assert all(r.order.id == winner_id for r in results)
    assert len(await store.history(limit=100)) == 1


async def test_repeated_claim_of_the_same_order_reports_the_win(store: OrderStore) -> None:
    """A claim retried after a lost reply must not look like someone else's claim."""
    order = make_order()
    await store.claim(order, TTL)
    assert (await store.claim(order, TTL)).claimed
    assert len(await store.state_history(order.id)) == 1


async def test_claim_of_a_new_request_with_a_stored_order_id_conflicts(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    clash = make_order(order_id=order.id)
    with pytest.raises(StoreConflictError) as info:
        await store.claim(clash, TTL)
    assert info.value.code is ErrorCode.STORE_CONFLICT
    assert await store.get_by_request_id(clash.request_id) is None


async def test_claim_records_first_state_history_entry(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    assert await store.state_history(order.id) == [
        {"state": "SUBMITTING", "version": 1, "at": order.updated_at, "reason": "claim"}
    ]


# --- save -----------------------------------------------------------------------------
async def test_save_is_a_version_compare_and_set(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    v2 = evolve(order, state=OrderState.NEW, exchange_order_id="42")
    await store.save(v2, reason="venue accepted")
    assert await store.get(order.id) == v2

    stale = evolve(order, state=OrderState.CANCELED)  # version 2 again, other content
    with pytest.raises(StoreConflictError) as info:
        await store.save(stale)
    assert info.value.details["stored"] == 2
    skipped = evolve(evolve(v2))  # version 4 on top of 2
    with pytest.raises(StoreConflictError):
        await store.save(skipped)
    assert await store.get(order.id) == v2


async def test_saving_an_unknown_order_conflicts(store: OrderStore) -> None:
    with pytest.raises(StoreConflictError) as info:
        await store.save(make_order(version=2))
    assert info.value.details["stored"] is None


async def test_a_retried_identical_save_succeeds_once(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    v2 = evolve(order, state=OrderState.NEW)
    await store.save(v2, reason="a")
    await store.save(v2, reason="a")
    assert [e["version"] for e in await store.state_history(order.id)] == [1, 2]


async def test_concurrent_saves_of_one_version_have_one_winner(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    candidates = [evolve(order, error_message=f"writer {i}") for i in range(20)]
    results = await asyncio.gather(*(store.save(c) for c in candidates), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, StoreConflictError) for r in results if r is not None)


async def test_state_history_lists_every_change_in_order(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    v2 = evolve(order, state=OrderState.NEW)
    v3 = evolve(v2, state=OrderState.PARTIALLY_FILLED)
    v4 = evolve(v3, state=OrderState.FILLED)
    for version, reason in ((v2, "accepted"), (v3, "fill 1"), (v4, "fill 2")):
        await store.save(version, reason=reason)
    history = await store.state_history(order.id)
    assert [(e["state"], e["version"], e["reason"]) for e in history] == [
        ("SUBMITTING", 1, "claim"),
        ("NEW", 2, "accepted"),
        ("PARTIALLY_FILLED", 3, "fill 1"),
        ("FILLED", 4, "fill 2"),
    ]
    assert history[-1]["at"] == v4.updated_at


# --- open orders ----------------------------------------------------------------------
async def test_terminal_orders_leave_the_open_index(store: OrderStore) -> None:
    btc = make_order(1)
    eth = make_order(2, symbol="ETHUSDT")
    await store.claim(btc, TTL)
    await store.claim(eth, TTL)
    assert [o.id for o in await store.open_orders()] == [btc.id, eth.id]
    assert [o.id for o in await store.open_orders("BTCUSDT")] == [btc.id]
    assert await store.open_order_count() == 2
    assert await store.open_order_count("ETHUSDT") == 1

    await store.save(evolve(btc, state=OrderState.CANCELED))
    assert [o.id for o in await store.open_orders()] == [eth.id]
    assert await store.open_orders("BTCUSDT") == []
    assert await store.open_order_count("BTCUSDT") == 0
    assert await store.open_order_count() == 1


async def test_an_order_claimed_terminal_is_never_open(store: OrderStore) -> None:
    rejected = make_order(state=OrderState.REJECTED)
    await store.claim(rejected, TTL)
    assert await store.open_orders() == []
    assert [o.id for o in await store.history()] == [rejected.id]


async def test_open_orders_carry_their_latest_version(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    v2 = evolve(order, state=OrderState.PARTIALLY_FILLED, filled_quantity=Decimal("0.005"))
    await store.save(v2)
    assert await store.open_orders() == [v2]


# --- history --------------------------------------------------------------------------
async def test_history_is_newest_first_with_limit_and_time_filters(store: OrderStore) -> None:
    orders = [make_order(i, symbol="BTCUSDT" if i % 2 else "ETHUSDT") for i in range(10)]
    for order in orders:
        await store.claim(order, TTL)
    newest_first = [o.id for o in reversed(orders)]
    assert [o.id for o in await store.history()] == newest_first
    assert [o.id for o in await store.history(limit=3)] == newest_first[:3]
    assert await store.history(limit=0) == []
    window = await store.history(start_ms=BASE_MS + 3, end_ms=BASE_MS + 6)
    assert [o.id for o in window] == [orders[i].id for i in (6, 5, 4, 3)]
    btc = await store.history("BTCUSDT", start_ms=BASE_MS + 4)
    assert [o.id for o in btc] == [orders[i].id for i in (9, 7, 5)]
    assert await store.history("BTCUSDT", end_ms=BASE_MS) == []
    assert await store.history("XRPUSDT") == []


async def test_history_includes_terminal_orders_at_their_latest_version(
    store: OrderStore,
) -> None:
    order = make_order()
    await store.claim(order, TTL)
    filled = evolve(order, state=OrderState.FILLED, filled_quantity=order.quantity)
    await store.save(filled)
    assert await store.history() == [filled]


# --- fills ----------------------------------------------------------------------------
async def test_fills_are_recorded_once_per_symbol_and_trade_id(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    first, second = make_fill(order, 1), make_fill(order, 2)
    assert await store.add_fill(first)
    assert not await store.add_fill(first)
    assert await store.add_fill(second)
    assert await store.fills(order.id) == [first, second]


async def test_same_trade_id_on_another_symbol_is_another_fill(store: OrderStore) -> None:
    btc, eth = make_order(1), make_order(2, symbol="ETHUSDT")
    assert await store.add_fill(make_fill(btc, 7))
    assert await store.add_fill(make_fill(eth, 7))


async def test_concurrent_duplicate_fills_record_once(store: OrderStore) -> None:
    order = make_order()
    fill = make_fill(order, 99)
    results = await asyncio.gather(*(store.add_fill(fill) for _ in range(20)))
    assert results.count(True) == 1
    assert await store.fills(order.id) == [fill]


# --- replies and release --------------------------------------------------------------
async def test_reply_cache_round_trip_and_overwrite(store: OrderStore) -> None:
    await store.save_reply("r1", b"\x81\xa2ok\xc3", TTL)
    assert await store.get_reply("r1") == b"\x81\xa2ok\xc3"
    await store.save_reply("r1", b"second", TTL)
    assert await store.get_reply("r1") == b"second"


async def test_release_undoes_a_claim_so_a_retry_is_fresh(store: OrderStore) -> None:
    order = make_order(request_id="r-rel")
    await store.claim(order, TTL)
    assert await store.release(order)
    assert await store.get(order.id) is None
    assert await store.get_by_request_id("r-rel") is None
    assert await store.open_orders() == []
    assert await store.history() == []
    assert await store.state_history(order.id) == []
    retry = make_order(request_id="r-rel")
    assert (await store.claim(retry, TTL)).claimed


async def test_release_refuses_an_order_that_moved_on(store: OrderStore) -> None:
    order = make_order()
    await store.claim(order, TTL)
    await store.save(evolve(order, state=OrderState.NEW))
    assert not await store.release(order)
    assert await store.get_by_request_id(order.request_id) is not None
    assert not await store.release(make_order())


async def test_ping(store: OrderStore) -> None:
    await store.ping()


async def test_history_covers_orders_created_within_the_order_ttl(store: OrderStore) -> None:
    old = make_order(created_at=BASE_MS - 31 * 86_400_000)
    recent = make_order()
    await store.claim(old, TTL)
    await store.claim(recent, TTL)
    assert [o.id for o in await store.history()] == [recent.id]
    assert await store.get(old.id) == old


# --- audit journal ----------------------------------------------------------------------
async def test_journal_appends_in_order_per_order(store: OrderStore) -> None:
    assert await store.journal("coid-none") == []
    await store.append_journal("coid-a", [b'{"n":1}', b'{"n":2}'])
    await store.append_journal("coid-b", [b'{"n":9}'])
    await store.append_journal("coid-a", [b'{"n":3}'])
    await store.append_journal("coid-a", [])
    assert await store.journal("coid-a") == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert await store.journal("coid-b") == [b'{"n":9}']


async def test_journal_many_appends_every_order_of_the_batch(store: OrderStore) -> None:
    await store.append_journal("coid-a", [b'{"n":1}'])
    await store.append_journal_many({"coid-a": [b'{"n":2}', b'{"n":3}'], "coid-b": [b'{"n":9}']})
    await store.append_journal_many({"coid-c": [], "coid-b": [b'{"n":10}']})
    await store.append_journal_many({})
    assert await store.journal("coid-a") == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert await store.journal("coid-b") == [b'{"n":9}', b'{"n":10}']
    assert await store.journal("coid-c") == []


async def test_journal_many_is_capped_per_order(store: OrderStore) -> None:
    entries = [f'{{"n":{i}}}'.encode() for i in range(JOURNAL_MAX_ENTRIES + 3)]
    await store.append_journal_many({"coid-cap": entries, "coid-small": entries[:2]})
    assert await store.journal("coid-cap") == entries[3:]
    assert await store.journal("coid-small") == entries[:2]


async def test_journal_is_capped_keeping_the_newest(store: OrderStore) -> None:
    entries = [f'{{"n":{i}}}'.encode() for i in range(JOURNAL_MAX_ENTRIES + 7)]
    await store.append_journal("coid-cap", entries[:100])
    await store.append_journal("coid-cap", entries[100:])
    kept = await store.journal("coid-cap")
    assert kept == entries[7:]
