"""Scale-out fixtures: the e2e ones (real simulator, daemons, ZeroMQ) on Redis only —
several daemons sharing one Redis and one venue account (issue 8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from ..e2e.conftest import control, make_daemon, sim  # noqa: F401  (fixtures)


@pytest.fixture
def store_kind() -> str:
    """Scale-out is a Redis topology: every daemon of a test shares one Redis."""
    return "redis"


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``check`` until true; fail after ``timeout_s`` (bounded waits only)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
