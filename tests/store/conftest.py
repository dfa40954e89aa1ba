"""Fixtures for the store contract suite: one ``store`` per backend, isolated per test.

Redis tests use the real server at OEXEC_TEST_REDIS (default redis://127.0.0.1:6379/15)
under a unique key prefix, deleted afterwards. SQLite tests use a file in tmp_path.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis.asyncio as aioredis

from oexec.models import Fill, Order, OrderState, OrderType, Side, TimeInForce
from oexec.service.ports import OrderStore
from oexec.store import RedisStore, SqliteStore

REDIS_URL = os.environ.get("OEXEC_TEST_REDIS", "redis://127.0.0.1:6379/15")
#: An hour ago: history only keeps orders created within the order TTL of now.
BASE_MS = int(time.time() * 1000) - 3_600_000


def make_order(
    n: int = 1,
    *,
    request_id: str | None = None,
    order_id: str | None = None,
    symbol: str = "BTCUSDT",
    state: OrderState = OrderState.SUBMITTING,
    created_at: int | None = None,
    version: int = 1,
) -> Order:
    created = BASE_MS + n if created_at is None else created_at
    return Order(
        id=order_id or f"ord-{uuid.uuid4().hex[:12]}",
        request_id=request_id or f"req-{uuid.uuid4().hex[:12]}",
        client_order_id=f"x-{uuid.uuid4().hex[:16]}",
        symbol=symbol,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal("50000.10"),
        time_in_force=TimeInForce.GTC,
        state=state,
        created_at=created,
        updated_at=created,
        version=version,
    )


def make_fill(order: Order, trade_id: int, qty: str = "0.005") -> Fill:
    return Fill(
        order_id=order.id,
        exchange_order_id="123",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        trade_id=trade_id,
        price=Decimal("50000.10"),
        quantity=Decimal(qty),
        commission=Decimal("0.0012"),
        commission_asset="USDT",
        is_maker=True,
        realized_pnl=Decimal(0),
        time=BASE_MS + trade_id,
    )


def evolve(order: Order, **changes: Any) -> Order:
    """The next stored version of ``order`` with ``changes``."""
    fields = {"version": order.version + 1, "updated_at": order.updated_at + 1, **changes}
    return attrs.evolve(order, **fields)


@pytest.fixture
def prefix() -> str:
    return f"oexec-test:{uuid.uuid4().hex}:"


async def _delete_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_factory(prefix: str) -> AsyncIterator[Callable[..., RedisStore]]:
    """Makes RedisStores on one test prefix (each its own pool, as separate daemons)."""
    stores: list[RedisStore] = []

    def make(**kwargs: Any) -> RedisStore:
        store = RedisStore.from_url(REDIS_URL, prefix=prefix, **kwargs)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()
    await _delete_prefix(prefix)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def sqlite_factory(tmp_path: Path) -> AsyncIterator[Callable[..., SqliteStore]]:
    stores: list[SqliteStore] = []

    def make(path: Path | None = None, **kwargs: Any) -> SqliteStore:
        store = SqliteStore(str(path or tmp_path / "store.sqlite"), **kwargs)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture(params=["redis", "sqlite"])
async def store(
    request: pytest.FixtureRequest,
    redis_factory: Callable[..., RedisStore],
    sqlite_factory: Callable[..., SqliteStore],
) -> AsyncIterator[OrderStore]:
    backend: OrderStore = redis_factory() if request.param == "redis" else sqlite_factory()
    await backend.start()
    yield backend
