"""What only the SQLite backend promises: persistence across reopen, expiry by its own
clock, claims atomic across two connections on one file, typed errors."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from oexec.errors import ErrorCode, StoreError
from oexec.models import OrderState
from oexec.store import SqliteStore
from oexec.store.sqlite_db import PURGE_INTERVAL_S, SqliteDb

from .helpers import evolve, make_fill, make_order

TTL = 3_600


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_everything_survives_a_reopen(
    sqlite_factory: Callable[..., SqliteStore], tmp_path: Path
) -> None:
    path = tmp_path / "persist.sqlite"
    first = sqlite_factory(path)
    order = make_order()
    await first.claim(order, TTL)
    v2 = evolve(order, state=OrderState.NEW)
    await first.save(v2, reason="accepted")
    await first.save_reply(order.request_id, b"reply", TTL)
    fill = make_fill(order, 3)
    await first.add_fill(fill)
    await first.close()

    second = sqlite_factory(path)
    await second.start()
    assert await second.get(order.id) == v2
    assert await second.get_by_request_id(order.request_id) == v2
    assert await second.open_orders() == [v2]
    assert await second.get_reply(order.request_id) == b"reply"
    assert await second.fills(order.id) == [fill]
    assert not await second.add_fill(fill)
    assert len(await second.state_history(order.id)) == 2
    assert not (await second.claim(make_order(request_id=order.request_id), TTL)).claimed


async def test_claims_race_across_two_connections_on_one_file(
    sqlite_factory: Callable[..., SqliteStore], tmp_path: Path
) -> None:
    """Two stores on one file stand for two processes: BEGIN IMMEDIATE serialises them."""
    path = tmp_path / "shared.sqlite"
    a, b = sqlite_factory(path), sqlite_factory(path)
    await asyncio.gather(a.start(), b.start())
    attempts = [
        store.claim(make_order(request_id=f"r{i}"), TTL) for i in range(25) for store in (a, b)
    ]
    results = await asyncio.gather(*attempts)
    for i in range(25):
        mine = [r for r in results if r.order.request_id == f"r{i}"]
        assert sum(r.claimed for r in mine) == 1
        assert len({r.order.id for r in mine}) == 1


async def test_claim_expires_after_its_ttl_and_then_a_new_claim_wins(
    sqlite_factory: Callable[..., SqliteStore],
) -> None:
    clock = Clock(1_000_000.0)
    store = sqlite_factory(clock=clock)
    first = make_order(request_id="r-ttl")
    await store.claim(first, 60)
    await store.save_reply("r-ttl", b"old", 60)
    clock.now += 59
    assert not (await store.claim(make_order(request_id="r-ttl"), 60)).claimed
    clock.now += 2
    assert await store.get_by_request_id("r-ttl") is None
    assert await store.get_reply("r-ttl") is None
    second = make_order(request_id="r-ttl")
    assert (await store.claim(second, 60)).claimed
    assert await store.get_by_request_id("r-ttl") == second
    assert await store.get(first.id) == first  # orders live for the order TTL


async def test_orders_expire_after_the_order_ttl_and_purge_deletes_them(
    sqlite_factory: Callable[..., SqliteStore],
) -> None:
    clock = Clock(1_000_000.0)
    store = sqlite_factory(clock=clock, order_ttl_s=100)
    order = make_order(created_at=1_000_000_000)
    await store.claim(order, 10)
    await store.add_fill(make_fill(order, 1))
    assert await store.open_order_count() == 1
    clock.now += 101
    assert await store.get(order.id) is None
    assert await store.open_orders() == []
    assert await store.fills(order.id) == []
    with pytest.raises(StoreError) as info:
        await store.save(evolve(order))
    assert info.value.code is ErrorCode.STORE_CONFLICT
    assert await store.purge() == 1
    assert await store.state_history(order.id) == []


async def test_claims_purge_expired_rows_hourly(
    sqlite_factory: Callable[..., SqliteStore],
) -> None:
    clock = Clock(1_000_000.0)
    store = sqlite_factory(clock=clock, order_ttl_s=100)
    old = make_order(created_at=1_000_000_000)
    await store.claim(old, 10)
    clock.now += PURGE_INTERVAL_S
    await store.claim(make_order(created_at=int(clock.now * 1000)), 10)
    assert await store.state_history(old.id) == []


def test_sqlite_db_refuses_an_unknown_synchronous_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SqliteDb(str(tmp_path / "x.sqlite"), order_ttl_s=10, synchronous="1; DROP TABLE x")


async def test_a_failed_write_rolls_back_and_the_next_one_works(
    sqlite_factory: Callable[..., SqliteStore], tmp_path: Path
) -> None:
    store = sqlite_factory()
    order = make_order()
    await store.claim(order, TTL)
    clash = make_order(order_id=order.id)
    with pytest.raises(StoreError):
        await store.claim(clash, TTL)
    assert await store.get_by_request_id(clash.request_id) is None
    assert (await store.claim(make_order(), TTL)).claimed


async def test_claim_of_a_request_whose_order_expired_is_a_store_error(
    sqlite_factory: Callable[..., SqliteStore],
) -> None:
    clock = Clock(1_000_000.0)
    store = sqlite_factory(clock=clock, order_ttl_s=10)
    await store.claim(make_order(request_id="r-long"), 100)
    clock.now += 20
    with pytest.raises(StoreError) as info:
        await store.claim(make_order(request_id="r-long"), 100)
    assert info.value.code is ErrorCode.STORE_UNAVAILABLE


async def test_unopenable_file_is_a_store_error_at_start(
    sqlite_factory: Callable[..., SqliteStore], tmp_path: Path
) -> None:
    store = sqlite_factory(tmp_path / "missing-dir" / "x.sqlite")
    with pytest.raises(StoreError) as info:
        await store.start()
    assert info.value.code is ErrorCode.STORE_UNAVAILABLE
    assert isinstance(info.value.__cause__, sqlite3.Error)


async def test_corrupt_file_is_a_store_error(
    sqlite_factory: Callable[..., SqliteStore], tmp_path: Path
) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        await sqlite_factory(path).start()


async def test_closed_store_refuses_calls_and_close_is_idempotent(
    sqlite_factory: Callable[..., SqliteStore],
) -> None:
    store = sqlite_factory()
    await store.start()
    await store.close()
    await store.close()
    with pytest.raises(StoreError):
        await store.get("x")


def test_unknown_synchronous_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SqliteStore(str(tmp_path / "x.sqlite"), synchronous="SOMETIMES")


async def test_file_is_in_wal_mode(sqlite_factory: Callable[..., SqliteStore]) -> None:
    store = sqlite_factory(synchronous="normal")
    await store.start()
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
