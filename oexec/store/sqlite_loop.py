"""The SQLite store's jobs run on the event loop, one group commit per loop turn; only the
fsync and the WAL checkpoints run on threads of their own.

Why not a worker thread any more (issue 14). The store used to run every statement on one
Python thread. Each call paid a hop (~70-100 µs of queue, wake-up and future settling),
and, worse, while that thread ran Python the loop thread waited for the GIL after every
call that released it: each ZeroMQ send, socket write and epoll wait of the order path.
Profiled on the sync bench row: zmq ``send`` averaged 42 µs and an indexed SQLite read
on the loop 124 µs - almost all of it waiting for the GIL the store thread held.

Here every job queued during one turn of the loop runs at the end of that turn as one
batch (``SqliteDb.run_batch``: one transaction, a savepoint per job, one COMMIT). SQLite
itself is fast enough for that (an indexed claim or save commits in ~30 µs at
``synchronous=NORMAL``); what must not run on the loop is waiting for the disk:

* **fsync**: the connection commits at NORMAL, which in WAL mode is crash-safe for the
  process (the write is in the OS) but not for the host. Jobs whose kind asks for more
  (``fsync_kinds``: claims, at ``store.durability = "fsync"``) are answered only after
  the write-ahead log has been fsynced by a helper thread. Many batches share one fsync
  (the next one starts when the last ends), so a burst costs one fsync per disk round
  trip, not one per order. An fsync of the log after a NORMAL commit is what FULL does
  inside the COMMIT.
* **checkpoints**: SQLite's automatic checkpoint (copying the log back into the database,
  with fsyncs) would run inside a COMMIT on the loop. It is off; a helper thread with its
  own connection runs PASSIVE checkpoints (never blocking the writer) once the log has
  grown past ``CHECKPOINT_BYTES``.

Those threads run no Python while they wait (fsync and sqlite3 release the GIL), so they
do not take the loop's GIL away the way the worker thread did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

T = TypeVar("T")

#: What a job does, for ``run_batch``: "read" only reads, "update" and "claim" write (at
#: the store's update and claim durability level), "alone" must run outside any
#: transaction (closing the connection).
JobKind = Literal["read", "update", "claim", "alone"]
#: One job of a batch as ``run_batch`` sees it.
BatchJob = tuple[Callable[[], Any], JobKind]
#: ``(True, result)`` or ``(False, exception)``, one per job, in the batch's order.
Outcome = tuple[bool, Any]
RunBatch = Callable[[Sequence[BatchJob]], list[Outcome]]


def attempt(fn: Callable[[], Any]) -> Outcome:
    """Run one job; its exception is its outcome (delivered to the caller, never lost)."""
    try:
        return (True, fn())
    except BaseException as exc:
        return (False, exc)


def run_each(jobs: Sequence[BatchJob]) -> list[Outcome]:
    """The plain runner: every job on its own."""
    return [attempt(fn) for fn, _kind in jobs]


#: The most jobs one batch takes; the rest run in the next turn (a bounded pause).
MAX_BATCH = 256
#: A checkpoint runs once the write-ahead log is larger than this (SQLite's default
#: autocheckpoint is 1,000 pages, ~4 MB).
CHECKPOINT_BYTES = 4 << 20
CHECKPOINT_POLL_S = 0.25

_Job = tuple[asyncio.Future[Any], Callable[[], Any], JobKind]


class LoopBatcher:
    """Runs store jobs on the loop, batched per loop turn; durable kinds wait for fsync."""

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        wal_path: str,
        fsync_kinds: Collection[JobKind] = (),
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._jobs: list[_Job] = []
        self._scheduled = False
        self._fsync_kinds = frozenset(fsync_kinds)
        self._wal = WalSync(wal_path)
        #: jobs answered once the next fsync of the log is done, and whether one runs
        self._awaiting_fsync: list[tuple[asyncio.Future[Any], bool, Any]] = []
        self._syncing = False
        self._executor: ThreadPoolExecutor | None = None
        self._drainers: list[asyncio.Future[None]] = []
        #: batches run (diagnostics and tests)
        self.batches = 0
        self.fsyncs = 0

    def run(self, fn: Callable[[], T], kind: JobKind = "read") -> asyncio.Future[T]:
        """Queue ``fn`` for the end of this loop turn; the future settles when its batch is
        committed (and, for ``fsync_kinds``, its log fsynced). Cancelling the future does
        not take the job back."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.append((future, fn, kind))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        jobs, self._jobs = self._jobs[: self._max_batch], self._jobs[self._max_batch :]
        if self._jobs:
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._scheduled = False
        if not jobs:
            self._wake_drainers()
            return
        try:
            outcomes = self._run_batch([(fn, kind) for _, fn, kind in jobs])
            if len(outcomes) != len(jobs):
                raise RuntimeError("run_batch returned the wrong number of outcomes")
        except BaseException as exc:  # a runner bug must still answer every caller
            outcomes = [(False, exc)] * len(jobs)
        self.batches += 1
        for (future, _, kind), (ok, value) in zip(jobs, outcomes, strict=True):
            if ok and kind in self._fsync_kinds:
                self._awaiting_fsync.append((future, ok, value))
            else:
                _settle(future, ok, value)
        if self._awaiting_fsync and not self._syncing:
            self._start_fsync()
        self._wake_drainers()

    def _start_fsync(self) -> None:
        waiting, self._awaiting_fsync = self._awaiting_fsync, []
        self._syncing = True
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="oexec-sqlite-fsync")
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._executor, self._wal.sync)

        def synced(future: asyncio.Future[None]) -> None:
            self._syncing = False
            self.fsyncs += 1
            error = future.exception() if not future.cancelled() else OSError("cancelled")
            for waiter, ok, value in waiting:
                if error is None:
                    _settle(waiter, ok, value)
                else:  # committed, but not known to be on the disk: say so
                    _settle(waiter, False, error)
            if self._awaiting_fsync:
                self._start_fsync()
            self._wake_drainers()

        done.add_done_callback(synced)

    def _busy(self) -> bool:
        return bool(self._jobs or self._scheduled or self._syncing or self._awaiting_fsync)

    def _wake_drainers(self) -> None:
        if not self._busy():
            drainers, self._drainers = self._drainers, []
            for waiter in drainers:
                _settle(waiter, True, None)

    async def drain(self) -> None:
        """Wait until every queued job ran and every fsync it needs is done."""
        if self._busy():
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drainers.append(waiter)
            await waiter

    def close(self) -> None:
        self._wal.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # a cancelled caller
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class WalSync:
    """fsync of the database's write-ahead log (on the helper thread)."""

    def __init__(self, wal_path: str) -> None:
        self.path = wal_path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def sync(self) -> None:
        with self._lock:
            fd = self._open()
            if fd is not None:
                os.fsync(fd)

    def _open(self) -> int | None:
        """The log's fd, reopened if SQLite replaced the file (a new inode)."""
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            return None  # nothing written yet: nothing to sync
        if self._fd is not None and os.fstat(self._fd).st_ino != current:
            os.close(self._fd)
            self._fd = None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class Checkpointer:
    """PASSIVE checkpoints on a thread of their own, once the log has grown; the loop's
    connection runs with ``wal_autocheckpoint = 0`` so it never checkpoints inside a
    COMMIT."""

    def __init__(self, db_path: str, *, threshold_bytes: int = CHECKPOINT_BYTES) -> None:
        self.db_path = db_path
        self.threshold_bytes = threshold_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oexec-sqlite-ckpt", daemon=True)
        self.checkpoints = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(CHECKPOINT_POLL_S):
                with contextlib.suppress(OSError):
                    if os.stat(self.db_path + "-wal").st_size < self.threshold_bytes:
                        continue
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.db_path, isolation_level=None)
                        conn.execute("PRAGMA busy_timeout = 1000")
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:
                    continue  # busy or a transient error: the next poll tries again
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
