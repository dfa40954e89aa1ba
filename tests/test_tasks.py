"""cancel_and_wait: a task that swallows a cancellation cannot hang a stop."""

from __future__ import annotations

import asyncio

from oexec.tasks import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed >= 2:
                    raise
                # a library "cleaning up" and carrying on

    async def failing() -> None:
        raise ValueError("ended with an error before the stop")

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(failing())]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(tasks, recancel_s=0.01), 2)
    assert all(t.done() for t in tasks) and swallowed == 2


async def test_gives_up_on_a_task_that_never_ends() -> None:
    released = asyncio.Event()

    async def immortal() -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], recancel_s=0.01, give_up_s=0.05), 2)
    assert not task.done()
    released.set()  # leave nothing behind
    task.cancel()
    await task


async def test_market_state_stop_ends_when_its_price_source_swallows_the_cancel() -> None:
    """The CI hang: ``Daemon.stop`` waited forever on the mark-price refresh loop, whose
    venue call had swallowed the cancellation, so the loop went back to sleep."""
    from decimal import Decimal

    from oexec.service.market import MarketState

    entered = asyncio.Event()
    swallowed = 0

    async def source(symbol: str) -> Decimal:
        nonlocal swallowed
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed += 1  # what asyncio.wait_for in 3.11 can do when the inner call just finished
        return Decimal("100")

    market = MarketState(source, refresh_s=0.001)
    market.set_mark_price("BTCUSDT", Decimal("1"))
    market.start()
    await asyncio.wait_for(entered.wait(), 2)
    refresh = market._task
    assert refresh is not None
    stopping = asyncio.create_task(market.stop())
    await asyncio.wait({stopping}, timeout=5)  # not wait_for: a swallowed cancel fools it
    assert stopping.done() and refresh.done() and swallowed == 1
