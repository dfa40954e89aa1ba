"""SqliteThread: jobs run one at a time in order on one thread; results reach the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from oexec.store.sqlite_thread import BatchJob, Outcome, SqliteThread, run_each


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


async def test_a_batch_takes_at_most_max_batch_jobs() -> None:
    sizes: list[int] = []
    started, release = threading.Event(), threading.Event()

    def runner(jobs: Sequence[BatchJob]) -> list[Outcome]:
        sizes.append(len(jobs))
        return run_each(jobs)

    def hold() -> None:
        started.set()
        release.wait(5)

    worker = SqliteThread(run_batch=runner, max_batch=4)
    held = worker.run(hold)
    assert await asyncio.to_thread(started.wait, 5)
    futures = [worker.run(lambda n=n: n) for n in range(10)]
    release.set()
    await held
    assert await asyncio.gather(*futures) == list(range(10))
    assert sizes == [1, 4, 4, 2]
    worker.stop()


async def test_a_runner_that_breaks_still_answers_every_caller() -> None:
    def broken(jobs: Sequence[BatchJob]) -> list[Outcome]:
        return []

    worker = SqliteThread(run_batch=broken)
    with pytest.raises(RuntimeError, match="wrong number of outcomes"):
        await worker.run(lambda: 1)
    worker.stop()
