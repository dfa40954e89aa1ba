"""Fixtures shared by test packages that talk to the machine's Redis directly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from .e2e.conftest import REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    """A client of the test Redis (the machine's, db 15 unless OEXEC_TEST_REDIS says)."""
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: aioredis.Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"oexec-test-{uuid.uuid4().hex[:10]}:"
    yield name
    keys = [key async for key in redis.scan_iter(match=f"{name}*", count=1000)]
    if keys:
        await redis.delete(*keys)
