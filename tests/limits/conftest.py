"""A virtual clock for the running event loop: sleeps take no real time.

aiolimiter reads ``loop.time()``; the limiter under test gets the same clock. When the
loop would block waiting for the next timer, the clock jumps to it instead (the idea of
aiotools' VirtualClock), so minutes of rate-limit waiting run in milliseconds and the
assertions can be about exact virtual instants.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


class VirtualClock:
    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def virtual_loop(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    loop = asyncio.get_running_loop()
    clock = VirtualClock()
    monkeypatch.setattr(loop, "time", clock.time)
    selector = loop._selector  # type: ignore[attr-defined]
    real_select = selector.select

    def select(timeout: float | None = None) -> Any:
        if timeout is not None and timeout > 0:
            clock.advance(timeout)  # nothing to do until the next timer: jump to it
        return real_select(0 if timeout is not None else None)

    monkeypatch.setattr(selector, "select", select)
    return clock
