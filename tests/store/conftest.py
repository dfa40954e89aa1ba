"""Fixtures for the store contract suite: one ``store`` per backend, isolated per test.

Redis tests use the real server at OEXEC_TEST_REDIS (default redis://127.0.0.1:6379/15)
under a unique key prefix, deleted afterwards. SQLite tests use a file in tmp_path.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from oexec.service.ports import OrderStore
from oexec.store import RedisStore, SqliteStore

from .helpers import REDIS_URL


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
