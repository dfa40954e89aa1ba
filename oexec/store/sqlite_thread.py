"""The SQLite store's one worker thread, with a cheaper hop than ``run_in_executor``.

Why not a ThreadPoolExecutor: each ``run_in_executor`` call costs the loop ~40 µs of
Python (a concurrent Future, its condition variable, chaining it to an asyncio Future,
a loop wake-up per result), and the daemon makes several store calls per order. Here a
job is one SimpleQueue put; the thread runs every job queued by then and posts their
results back with one ``call_soon_threadsafe`` per batch. Jobs still run one at a time,
in submission order, on the thread that owns the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]]
_Outcome = tuple[asyncio.Future[Any], bool, Any]


def _deliver(outcomes: list[_Outcome]) -> None:
    """On the loop: settle the futures of one batch (cancelled callers are skipped)."""
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class SqliteThread:
    def __init__(self, name: str = "oexec-sqlite") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``fn`` on the thread; the returned future settles on the calling loop.

        Cancelling the future does not stop ``fn`` (it runs to completion, as before).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn))
        return future

    def stop(self, timeout_s: float = 5.0) -> None:
        """Finish the jobs already queued, then end the thread (blocks up to timeout_s)."""
        self._jobs.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while True:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            stopping = False
            for job in batch:
                if job is None:
                    stopping = True
                    continue
                loop, future, fn = job
                try:
                    outcome: _Outcome = (future, True, fn())
                except BaseException as exc:  # delivered to the caller, never lost here
                    outcome = (future, False, exc)
                by_loop.setdefault(loop, []).append(outcome)
            for loop, outcomes in by_loop.items():
                # A closed loop has nobody waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_deliver, outcomes)
            if stopping:
                return
