"""The SQLite store's one worker thread, with a cheaper hop than ``run_in_executor``.

Why not a ThreadPoolExecutor: each ``run_in_executor`` call costs the loop ~40 µs of
Python (a concurrent Future, its condition variable, chaining it to an asyncio Future,
a loop wake-up per result), and the daemon makes several store calls per order. Here a
job is one SimpleQueue put; the thread takes every job queued by then (at most
``max_batch``) as one batch, hands the batch to ``run_batch`` and posts the results back
with one ``call_soon_threadsafe`` per batch, so no caller hears of its job before the
whole batch is done (for the store: committed, see oexec/store/sqlite_db.py). Jobs still
run one at a time, in submission order, on the thread that owns the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

T = TypeVar("T")

#: What a job does, for ``run_batch``: "read" only reads, "update" and "claim" write (at
#: the store's update and claim durability level), "alone" must run outside any
#: transaction (closing the connection). The default runner ignores it.
JobKind = Literal["read", "update", "claim", "alone"]
#: One job of a batch as ``run_batch`` sees it.
BatchJob = tuple[Callable[[], Any], JobKind]
#: ``(True, result)`` or ``(False, exception)``, one per job, in the batch's order.
Outcome = tuple[bool, Any]
RunBatch = Callable[[Sequence[BatchJob]], list[Outcome]]

#: The most jobs one batch takes, so that one batch (and the wait of its first caller)
#: cannot grow without limit under load.
MAX_BATCH = 256

_Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any], JobKind]
_Settle = tuple[asyncio.Future[Any], bool, Any]


def attempt(fn: Callable[[], Any]) -> Outcome:
    """Run one job; its exception is its outcome (delivered to the caller, never lost)."""
    try:
        return (True, fn())
    except BaseException as exc:
        return (False, exc)


def run_each(jobs: Sequence[BatchJob]) -> list[Outcome]:
    """The plain runner: every job on its own."""
    return [attempt(fn) for fn, _kind in jobs]


def _deliver(outcomes: list[_Settle]) -> None:
    """On the loop: settle the futures of one batch (cancelled callers are skipped)."""
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class SqliteThread:
    def __init__(
        self,
        name: str = "oexec-sqlite",
        *,
        run_batch: RunBatch = run_each,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def run(self, fn: Callable[[], T], kind: JobKind = "read") -> asyncio.Future[T]:
        """Run ``fn`` on the thread; the returned future settles on the calling loop.

        Cancelling the future does not stop ``fn`` (it runs to completion, as before).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn, kind))
        return future

    def stop(self, timeout_s: float = 5.0) -> None:
        """Finish the jobs already queued, then end the thread (blocks up to timeout_s)."""
        self._jobs.put(None)
        self._thread.join(timeout_s)

    def _take(self, *, block: bool) -> tuple[list[_Job], bool]:
        """Up to ``max_batch`` queued jobs (waiting for the first one if ``block``), and
        whether the stop marker was among them."""
        jobs: list[_Job] = []
        stopping = False
        try:
            item = self._jobs.get() if block else self._jobs.get_nowait()
            while True:
                if item is None:
                    stopping = True
                else:
                    jobs.append(item)
                if len(jobs) >= self._max_batch:
                    break
                item = self._jobs.get_nowait()
        except queue.Empty:
            pass
        return jobs, stopping

    def _run(self) -> None:
        stopping = False
        while True:
            # After the stop marker, finish what is queued, then end.
            jobs, stop = self._take(block=not stopping)
            stopping = stopping or stop
            if jobs:
                self._settle(jobs)
            elif stopping:
                return

    def _settle(self, jobs: list[_Job]) -> None:
        try:
            outcomes = self._run_batch([(fn, kind) for _, _, fn, kind in jobs])
            if len(outcomes) != len(jobs):
                raise RuntimeError("run_batch returned the wrong number of outcomes")
        except BaseException as exc:  # a runner bug must still answer every caller
            outcomes = [(False, exc)] * len(jobs)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settle]] = {}
        for (loop, future, _, _), (ok, value) in zip(jobs, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, ok, value))
        for loop, settles in by_loop.items():
            # A closed loop has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, settles)
