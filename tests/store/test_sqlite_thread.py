"""SqliteThread: jobs run one at a time in order on one thread; results reach the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from oexec.store.sqlite_thread import SqliteThread


async def test_jobs_run_in_order_on_one_other_thread() -> None:
    worker = SqliteThread()
    seen: list[tuple[int, str]] = []

    def job(n: int) -> int:
        seen.append((n, threading.current_thread().name))
        return n * 2

    results = await asyncio.gather(*(worker.run(lambda n=n: job(n)) for n in range(50)))
    assert results == [n * 2 for n in range(50)]
    assert [n for n, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"oexec-sqlite"}
    worker.stop()


async def test_an_exception_reaches_its_caller_and_the_thread_goes_on() -> None:
    worker = SqliteThread()

    def boom() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await worker.run(boom)
    assert await worker.run(lambda: 7) == 7
    worker.stop()


async def test_a_cancelled_caller_does_not_stop_the_job() -> None:
    worker = SqliteThread()
    release = threading.Event()
    done: list[bool] = []

    def slow() -> None:
        release.wait(5)
        done.append(True)

    future = worker.run(slow)
    future.cancel()
    release.set()
    await worker.run(lambda: None)  # runs after slow() finished
    assert done == [True]
    worker.stop()
