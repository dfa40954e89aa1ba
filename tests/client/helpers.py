"""Helpers shared by the client tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from oexec.front.testing import InMemoryOrderService

Responder = Callable[[dict[str, Any]], bytes | None]


def release_after(service: InMemoryOrderService, op: str, n: int) -> None:
    """Block ``op`` until it has been called ``n`` times, then let every call through."""
    service.gate = asyncio.Event()
    original = getattr(service, op)
    count = 0

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        if count >= n:
            assert service.gate is not None
            service.gate.set()
        return await original(*args, **kwargs)

    setattr(service, op, counting)
