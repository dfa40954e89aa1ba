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
