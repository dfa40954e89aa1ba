"""The SQLite store's jobs run on the event loop, one group commit per loop turn; only the
fsync and the WAL checkpoints run on threads of their own.

Why not a worker thread any more (issue 14). The store used to run every statement on one
Python thread. Each call paid a hop (~70-100 µs of queue, wake-up and future settling),
and, worse, while that thread ran Python the loop thread waited for the GIL after every
call that released it: each ZeroMQ send, socket write and epoll wait of the order path.
Profiled on the sync bench row: zmq ``send`` averaged 42 µs and an indexed SQLite read
on the loop 124 µs - almost all of it waiting for the GIL the store thread held.

Here every job queued during one turn of the loop runs at the end of that turn as one
batch (``SqliteDb.run_batch``: one transaction and one COMMIT; savepoints, one per job,
only on the rerun of a batch in which a job failed after writing). SQLite
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
  own connection checkpoints once the log has grown past ``CHECKPOINT_BYTES`` (PASSIVE:
  never blocking the writer) and, past ``RESTART_BYTES``, pauses the batches for a
  moment to empty the log (see ``Checkpointer``). Should the log still grow past
  ``WAL_LIMIT_BYTES``, the batcher holds its batches until the checkpointer has had a
  go: the log's size is bounded, whatever the write rate.

Those threads run no Python while they wait (fsync and sqlite3 release the GIL), so they
do not take the loop's GIL away the way the worker thread did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
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
#: Once the log is larger than this, the checkpointer pauses the batches to empty it
#: (a pause costs two fsyncs, ~5-30 ms on the bench host: once per this much written).
RESTART_BYTES = 16 << 20
#: A log larger than this after a batch holds the next batches until the checkpointer
#: has run (the bound on the log's size when the checkpointer falls behind).
WAL_LIMIT_BYTES = 4 * RESTART_BYTES
#: The PASSIVE checkpoint runs again (at most ``PASSIVE_PASSES`` times) while the loop
#: appended more than this during the last one: what is left is copied in the pause.
PAUSE_AT_MOST_BYTES = 1 << 20
PASSIVE_PASSES = 3
#: How long the checkpointer waits for the loop to hold its batches before giving up on
#: this round (a loop that does not answer is busy or stopping).
HOLD_WAIT_S = 1.0

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
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Holds on the batches (the checkpointer's pauses): no batch runs while > 0.
        self._holds = 0
        #: The checkpointer this batcher asks for a checkpoint when the log is too large,
        #: the size that asks for one, and whether the batches wait for one now.
        self._checkpointer: Checkpointer | None = None
        self._wal_limit = WAL_LIMIT_BYTES
        self._limit_above = WAL_LIMIT_BYTES
        self._forcing = False
        #: batches run (diagnostics and tests)
        self.batches = 0
        self.fsyncs = 0
        #: times the batches waited for a checkpoint because the log was over its limit
        self.forced_checkpoints = 0

    def run(self, fn: Callable[[], T], kind: JobKind = "read") -> asyncio.Future[T]:
        """Queue ``fn`` for the end of this loop turn; the future settles when its batch is
        committed (and, for ``fsync_kinds``, its log fsynced). Cancelling the future does
        not take the job back."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.append((future, fn, kind))
        self._schedule()
        return future

    def _schedule(self) -> None:
        if not self._scheduled and not self._holds:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._holds:  # a checkpoint's pause: ``_release`` schedules the next flush
            return
        jobs, self._jobs = self._jobs[: self._max_batch], self._jobs[self._max_batch :]
        if self._jobs:
            self._schedule()
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
        if any(kind != "read" for _, _, kind in jobs):
            self._limit_log()
        self._wake_drainers()

    # --- the checkpointer's pauses ------------------------------------------------------
    def use_checkpointer(self, checkpointer: Checkpointer, wal_limit_bytes: int) -> None:
        """Hold the batches for ``checkpointer`` once the log is over ``wal_limit_bytes``."""
        self._checkpointer = checkpointer
        self._wal_limit = self._limit_above = wal_limit_bytes

    def _limit_log(self) -> None:
        """After a batch that wrote (one ``os.stat``, ~1 µs): a log past the checkpointer's
        ``restart_bytes`` wakes it (it need not wait for its poll); a log over its limit
        holds the batches until the checkpointer has run."""
        checkpointer = self._checkpointer
        if checkpointer is None or self._forcing or not checkpointer.running():
            return
        try:
            size = os.stat(self._wal.path).st_size
        except OSError:
            return
        if size <= self._limit_above:
            if size >= checkpointer.restart_bytes:
                checkpointer.wake()
            return
        if not checkpointer.request():
            return
        self._forcing = True
        self._holds += 1
        self.forced_checkpoints += 1

    def checkpointed(self, wal_size: int) -> None:
        """(On the loop.) The checkpoint the batches waited for is done, or failed: the
        log is now ``wal_size`` bytes. A log that could not be cut back (a reader of
        another process on an old snapshot) holds the batches again only once it has
        grown by another limit, so the store never stops on it."""
        if not self._forcing:
            return
        self._forcing = False
        self._limit_above = self._wal_limit + (wal_size if wal_size > self._wal_limit else 0)
        self._release()

    def checkpointed_from_thread(self, wal_size: int) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(self.checkpointed, wal_size)

    def hold_from_thread(self, stop: threading.Event) -> bool:
        """(From another thread.) Pause the batches; True once the loop has paused them
        (no batch runs until ``release_from_thread``). False: the loop did not answer in
        time or is gone - then no pause is in place once its queued callbacks ran."""
        loop = self._loop
        if loop is None:
            return False
        paused = threading.Event()
        try:
            loop.call_soon_threadsafe(self._hold, paused)
        except RuntimeError:  # the loop is closed
            return False
        waited = 0.0
        while not paused.wait(0.05):
            waited += 0.05
            if stop.is_set() or waited >= HOLD_WAIT_S:
                self.release_from_thread()  # runs after the hold (callbacks are FIFO)
                return False
        return True

    def release_from_thread(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._release)

    def _hold(self, paused: threading.Event) -> None:
        self._holds += 1
        paused.set()

    def _release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if not self._holds and self._jobs:
            self._schedule()
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
    """Checkpoints on a thread of their own, once the log has grown; the loop's connection
    runs with ``wal_autocheckpoint = 0`` so it never checkpoints inside a COMMIT.

    Why more than a PASSIVE checkpoint (session 5). A PASSIVE checkpoint copies the log's
    frames into the database without blocking the writer, but SQLite starts the log again
    from its beginning only when a write transaction begins with *every* frame copied -
    under sustained writes the loop has always appended some since, so the log grew
    (42 MB after 20,000 claims, 133 MB during the bench's 10,000-order load) until an idle
    moment. So each round, once the log is over ``threshold_bytes``:

    1. a PASSIVE checkpoint copies what is new while the loop writes on (again while
       the loop appended much during the last one);
    2. once the log is over ``restart_bytes``, the batcher pauses its batches
       (``LoopBatcher.hold_from_thread``; the loop itself runs on, store calls wait) and
       a TRUNCATE checkpoint copies the few frames appended since, then empties the log;
       the batches go on. The pause costs two fsyncs (the log's frames, then the
       database) whatever it copies, hence once per ``restart_bytes`` only.

    Nothing of this runs on the loop: both checkpoints and their fsyncs are on this
    thread, the pause is only the batches'. A reader of another process on an old
    snapshot makes the TRUNCATE give up at once (``busy_timeout = 0``: no wait in the
    pause); the next round tries again. ``request`` runs a round now (the batcher's log
    limit)."""

    def __init__(
        self,
        db_path: str,
        *,
        threshold_bytes: int = CHECKPOINT_BYTES,
        restart_bytes: int = RESTART_BYTES,
        writer: LoopBatcher | None = None,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
        poll_s: float = CHECKPOINT_POLL_S,
    ) -> None:
        self.db_path = db_path
        self.wal_path = db_path + "-wal"
        self.threshold_bytes = threshold_bytes
        self.restart_bytes = restart_bytes
        self._writer = writer
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._urgent = threading.Event()  # a request or the stop: no rest before the round
        self._requested = False  # a round the writer waits for (under _lock)
        self._ended = False  # the thread is past its last round (under _lock)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="oexec-sqlite-ckpt", daemon=True)
        self._page_bytes = 4096 + 24
        #: rounds that checkpointed, and of them those that emptied the log (diagnostics)
        self.checkpoints = 0
        self.truncations = 0
        #: the longest pause of the batches so far, in seconds (diagnostics, docs/bench.md)
        self.longest_pause_s = 0.0
        self.paused_s = 0.0
        if writer is not None:
            writer.use_checkpointer(self, wal_limit_bytes)

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def wake(self) -> None:
        """(From the loop.) Run a round now rather than at the next poll."""
        if not self._wake.is_set():
            self._wake.set()

    def request(self) -> bool:
        """(From the loop.) Run a round now; the writer is told when it is done. False:
        the thread has ended (nothing will run)."""
        with self._lock:
            if self._ended:
                return False
            self._requested = True
        self._urgent.set()
        self._wake.set()
        return True

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait(self._poll_s)
                self._wake.clear()
                self._urgent.clear()
                if self._stop.is_set():
                    return
                with self._lock:
                    requested, self._requested = self._requested, False
                emptied = True
                try:
                    if conn is None:
                        conn = self._connect()
                    emptied = self._round(conn, requested)
                except sqlite3.Error:
                    emptied = False  # busy or a transient error: a later round tries again
                finally:
                    if requested:
                        self._tell_writer()
                if not emptied:  # not again at once on the loop's wake-ups: a poll's rest
                    self._urgent.wait(self._poll_s)  # (a request or the stop ends it)
        finally:
            if conn is not None:
                conn.close()
            with self._lock:
                self._ended = True
                requested, self._requested = self._requested, False
            if requested:
                self._tell_writer()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 0")
        self._page_bytes = int(conn.execute("PRAGMA page_size").fetchone()[0]) + 24
        return conn

    def _wal_size(self) -> int:
        try:
            return os.stat(self.wal_path).st_size
        except OSError:
            return 0

    def _round(self, conn: sqlite3.Connection, requested: bool) -> bool:
        """One round; False if the log is past ``restart_bytes`` and could not be emptied.

        The pause goes by the file's size, not by the frames in use: after an idle
        moment the log starts again on its own without shrinking the file, and emptying
        it then keeps the file's size what the loop's limit reads."""
        if not requested and self._wal_size() < self.threshold_bytes:
            return True
        frames = 0
        for _ in range(PASSIVE_PASSES):  # again while the loop appended much meanwhile
            before = frames
            _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if (frames - before) * self._page_bytes < PAUSE_AT_MOST_BYTES:
                break
        self.checkpoints += 1
        writer = self._writer
        if writer is None or (not requested and self._wal_size() < self.restart_bytes):
            return True
        if not writer.hold_from_thread(self._stop):
            return False
        began = time.monotonic()
        try:
            busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            writer.release_from_thread()
            paused = time.monotonic() - began
            self.longest_pause_s = max(self.longest_pause_s, paused)
            self.paused_s += paused
        if busy:
            return False
        self.truncations += 1
        return True

    def _tell_writer(self) -> None:
        if self._writer is not None:
            self._writer.checkpointed_from_thread(self._wal_size())

    def stop(self) -> None:
        self._stop.set()
        self._urgent.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
