"""SqliteStore: the embedded OrderStore (one file, WAL), the default without Redis.

The event loop runs the SQL (oexec/store/sqlite_loop.py): every call made during one turn
of the loop becomes one batch at the end of that turn - one transaction, one COMMIT at
``synchronous=NORMAL`` (~30 µs for a claim on the bench host). Nothing that waits for the
disk runs on the loop: an fsync of the write-ahead log (what FULL would do inside the
COMMIT) runs on a helper thread before the jobs that need it are answered, and WAL
checkpoints run on another with their own connection. Until issue 14 a worker thread ran
every statement; each call paid a hop, and while that thread ran Python the loop waited
for the GIL after every ZeroMQ send or socket write (docs/bench.md has the A/B).

Durability, two levels. The idempotency claim (and its release) is answered at
``StoreConfig.durability`` (``sqlite_synchronous`` overrides): "process" (default) - the
claim and the SUBMITTING order survive a crash of the daemon; "fsync" - they are in the
fsynced log, so they survive a power loss (docs/configuration.md says why the default).
Every other write (``save``, ``save_reply``, ``add_fill``, the journal) at
``sqlite_update_synchronous`` (default NORMAL): it survives a daemon crash when it
returns, and a power loss once a later fsync of the log is done (a checkpoint's, or a
claim's at "fsync"). What a power loss can take is re-derived from the venue at start
(SUBMITTING/UNKNOWN orders resolved by client order id, open ones refreshed, missing
fills fetched).

Early claims (the daemon, ``claim_log=True``; issue 14): a claim of a request id that is
new - not among the claims in flight, not in the file (one indexed read) - is decided at
once, logged (oexec/store/claim_log.py: one ``os.write``, which survives any crash of the
daemon) and returned with ``ClaimResult.durable``; its write joins the batch of this turn
while the order travels to the venue, and the reply waits for it. The log is also the
file's lock: one daemon per SQLite file (several share a Redis store instead).

Group commit. ``SqliteDb.run_batch`` runs a batch with writes as one transaction:
``BEGIN IMMEDIATE``, the jobs, one ``COMMIT``, and only then are the callers' futures
settled. A job that raises gets its own error and the others go on: one that changed
nothing needs no undoing; one that raises after changing rows makes the batch roll back
and run again with each job in its own ``SAVEPOINT`` (rolled back to for that job alone;
savepoints for every batch were ~6 statements per order, issue 14). A failed COMMIT (or a
transaction SQLite rolled back on its own) fails every write of the batch, and every
read that ran after one of them (it may have seen them), with a StoreError: nothing of it
is stored. Reads run inside the transaction; a batch of one job or of reads only runs
alone (no savepoint). A task cancelled while its call is queued does not undo it.

A local file is the only supported place: WAL needs shared memory, so never put it on a
network filesystem. Tools that only read (``oexec reconcile --check``) open the file
without the claim log.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from oexec.errors import ErrorCode, StoreError
from oexec.models import Fill, Order
from oexec.service.ports import ClaimResult, OutboxEntry
from oexec.store.keys import ORDER_TTL_S
from oexec.store.sqlite_db import SYNC_STRENGTH, SYNCHRONOUS_MODES, SqliteDb
from oexec.store.sqlite_early import EarlyClaims
from oexec.store.sqlite_loop import BatchJob, Checkpointer, JobKind, LoopBatcher, Outcome, run_each

P = ParamSpec("P")
T = TypeVar("T")


class SqliteStore:
    """OrderStore on one SQLite file. The file is opened by the first
    call (``ping`` at start-up); an open failure is a StoreError on every call."""

    def __init__(
        self,
        path: str,
        *,
        order_ttl_s: int = ORDER_TTL_S,
        synchronous: str = "FULL",
        update_synchronous: str | None = None,
        clock: Callable[[], float] = time.time,
        claim_log: bool = False,
    ) -> None:
        modes = {synchronous.upper(), (update_synchronous or synchronous).upper()}
        if not modes <= set(SYNCHRONOUS_MODES):
            raise StoreError(
                f"sqlite synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}",
                code=ErrorCode.INTERNAL,
            )
        self.path = path
        self._closed = False
        #: Early claims (issue 14, oexec/store/sqlite_early.py), for the daemon only.
        self._early = (
            EarlyClaims(path, clock=clock, write=self._queue_claim, claimed=self._claimed_now)
            if claim_log
            else None
        )
        # The connection commits at most at NORMAL (no fsync on the loop); a stronger
        # level is kept by fsyncing the log off the loop before those jobs are answered.
        claim_level, update_level = synchronous.upper(), (update_synchronous or synchronous).upper()
        fsync_kinds: list[JobKind] = []
        if SYNC_STRENGTH[claim_level] >= SYNC_STRENGTH["FULL"]:
            fsync_kinds.append("claim")
        if SYNC_STRENGTH[update_level] >= SYNC_STRENGTH["FULL"]:
            fsync_kinds.append("update")
        self._runner = LoopBatcher(self._run_batch, wal_path=path + "-wal", fsync_kinds=fsync_kinds)
        self._checkpointer = Checkpointer(path, writer=self._runner)
        self._db: SqliteDb | None = None
        self._open_error: BaseException | None = None
        self._open = functools.partial(
            SqliteDb,
            path,
            order_ttl_s=order_ttl_s,
            synchronous=_at_most_normal(claim_level),
            update_synchronous=_at_most_normal(update_level),
            clock=clock,
        )

    async def _call(
        self,
        kind: JobKind,
        fn: Callable[Concatenate[SqliteDb, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if self._closed:
            raise StoreError("store is closed", code=ErrorCode.STORE_UNAVAILABLE)
        job = functools.partial(self._in_db, fn, *args, **kwargs)
        return await self._runner.run(job, kind)

    def _in_db(
        self, fn: Callable[Concatenate[SqliteDb, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            return fn(self._connected(), *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            raise self._store_error(getattr(fn, "__name__", "call"), exc) from exc

    def _store_error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(
            f"sqlite {what} failed: {type(exc).__name__}: {exc}", details={"path": self.path}
        )

    def _run_batch(self, jobs: Sequence[BatchJob]) -> list[Outcome]:
        """One group commit for the batch (see SqliteDb.run_batch)."""
        try:
            db = self._connected()  # outside any transaction: opening sets up the file
        except BaseException:
            return run_each(jobs)  # each job reports the open error as it always did
        outcomes = db.run_batch(jobs)
        # A failed COMMIT (or transaction) reaches the runner as a bare sqlite3 error.
        for index, (ok, value) in enumerate(outcomes):
            if not ok and isinstance(value, sqlite3.Error | OSError):
                error = self._store_error("transaction", value)
                error.__cause__ = value
                outcomes[index] = (False, error)
        return outcomes

    def _connected(self) -> SqliteDb:
        """The open database (opened on first use); open errors stick. Its checkpoints
        run on the checkpointer's thread (oexec/store/sqlite_loop.py)."""
        if self._open_error is not None:
            raise self._open_error
        if self._db is None:
            try:
                db = self._open()
                db.disable_autocheckpoint()
            except BaseException as exc:
                self._open_error = exc
                raise
            self._db = db
            self._checkpointer.start()
        return self._db

    async def start(self) -> None:
        """Wait for the file to be open and usable; raises StoreError. With the claim log:
        take the file's single-writer lock and store the claims an unclean stop left in
        the log."""
        await self.ping()
        if self._early is None:
            return
        try:
            await self._early.open(self._claim_now)
        except (OSError, sqlite3.Error) as exc:
            raise self._store_error("claim log", exc) from exc

    async def _claim_now(self, order: Order, ttl_s: int, events: bytes | None) -> ClaimResult:
        return await self._call("claim", SqliteDb.claim, order, ttl_s, events)

    def _claimed_now(self, request_id: str) -> bool:
        """On the loop, between batches (no transaction is open): one indexed read."""
        return self._connected().claimed(request_id)

    def _queue_claim(
        self, order: Order, ttl_s: int, events: bytes | None, body: bytes
    ) -> asyncio.Future[ClaimResult]:
        job = functools.partial(self._in_db, SqliteDb.claim, order, ttl_s, events, body)
        return self._runner.run(job, "claim")

    @property
    def recovered_claims(self) -> int:
        """Claims an unclean stop left in the claim log, stored at this start."""
        return 0 if self._early is None else self._early.recovered_claims

    @property
    def uncertain_until_ms(self) -> int:
        """Until when a request id this store does not know may still have reached the
        venue (after a host crash; 0: never). The pipeline asks the venue first."""
        return 0 if self._early is None else self._early.uncertain_until_ms

    # --- writes -------------------------------------------------------------------------
    async def claim(
        self, order: Order, ttl_s: int, *, events: bytes | None = None, early: bool = False
    ) -> ClaimResult:
        """Atomic idempotency claim; see OrderStore. Raises StoreError, StoreConflictError.

        ``early`` (with the claim log): decide the claim on the loop when the request id
        is new - not among the claims in flight, not in the file (one indexed read, no
        waiting) - log it, and return at once with ``durable``, the store write's
        future. The write is queued behind every earlier job of the store, so
        a later claim, read or save of the same order always sees it. Anything else (a
        known request id, no log) takes the batch path, which answers lost claims.
        """
        if self._early is not None:
            self._early.refuse_unstored(order.request_id)
            if early and not self._closed:
                claimed = self._early.try_claim(order, ttl_s, events)
                if claimed is not None:
                    return claimed
        return await self._call("claim", SqliteDb.claim, order, ttl_s, events)

    async def save(
        self,
        order: Order,
        *,
        reason: str = "",
        events: bytes | None = None,
        reply: bytes | None = None,
        reply_ttl_s: int = 0,
        owes_fills: bool = False,
    ) -> None:
        """Version compare-and-set (with the change's outbox entry, reply and owed-fills
        mark in the same transaction); raises StoreConflictError, StoreError."""
        await self._call(
            "update", SqliteDb.save, order, reason, events, reply, reply_ttl_s, owes_fills
        )

    async def release(self, order: Order) -> bool:
        """Undo the claim of ``order`` if it is still stored at ``order.version``."""
        return await self._call("claim", SqliteDb.release, order)

    async def save_reply(self, request_id: str, reply: bytes, ttl_s: int) -> None:
        await self._call("update", SqliteDb.save_reply, request_id, reply, ttl_s)

    async def add_fill(self, fill: Fill, *, events: bytes | None = None) -> bool:
        return await self._call("update", SqliteDb.add_fill, fill, events)

    async def outbox_take(self, older_than_ms: int, limit: int = 500) -> list[OutboxEntry]:
        return await self._call("update", SqliteDb.outbox_take, older_than_ms, limit)

    async def outbox_put(self, entry_id: str, events: bytes) -> None:
        await self._call("update", SqliteDb.outbox_put, entry_id, events)

    async def outbox_ack(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self._call("update", SqliteDb.outbox_ack, list(entry_ids))

    # --- the event log (not part of OrderStore: the SQLite event sink's own) ------------
    async def events_open(self) -> tuple[int, str]:
        """(last assigned seq, the log's epoch)."""
        return await self._call("update", SqliteDb.events_open)

    async def events_append(self, batch: Sequence[tuple[str, bytes, int]]) -> list[tuple[int, int]]:
        """Append (topic, packed event, stamp ms) in order; returns (seq, topic_seq) each."""
        return await self._call("update", SqliteDb.events_append, list(batch))

    async def events_read(
        self, from_seq: int, limit: int
    ) -> tuple[list[tuple[int, str, int, bytes]], int, int]:
        """(events with seq >= from_seq, trimmed_through, last seq)."""
        return await self._call("read", SqliteDb.events_read, from_seq, limit)

    async def events_trim(self, older_than_ms: int, max_events: int) -> int:
        return await self._call("update", SqliteDb.events_trim, older_than_ms, max_events)

    async def owed_fills(self) -> list[str]:
        return await self._call("read", SqliteDb.owed_fills)

    async def settle_fills(self, order_id: str) -> None:
        await self._call("update", SqliteDb.settle_fills, order_id)

    async def purge(self) -> int:
        """Delete expired rows now (also done at open and hourly on claim)."""
        return await self._call("update", SqliteDb.purge)

    # --- reads --------------------------------------------------------------------------
    async def get_reply(self, request_id: str) -> bytes | None:
        return await self._call("read", SqliteDb.get_reply, request_id)

    async def get(self, order_id: str) -> Order | None:
        return await self._call("read", SqliteDb.get, order_id)

    async def get_by_request_id(self, request_id: str) -> Order | None:
        return await self._call("read", SqliteDb.get_by_request_id, request_id)

    async def get_by_client_order_id(self, client_order_id: str) -> Order | None:
        return await self._call("read", SqliteDb.get_by_client_order_id, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Non-terminal orders (including ones not yet sent), oldest first."""
        return await self._call("read", SqliteDb.open_orders, symbol)

    async def open_order_count(self, symbol: str | None = None) -> int:
        return await self._call("read", SqliteDb.open_order_count, symbol)

    async def history(
        self,
        symbol: str | None = None,
        *,
        limit: int = 100,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Order]:
        """Orders created in [start_ms, end_ms], newest first, at most ``limit``."""
        return await self._call("read", SqliteDb.history, symbol, limit, start_ms, end_ms)

    async def state_history(self, order_id: str) -> list[dict[str, Any]]:
        return await self._call("read", SqliteDb.state_history, order_id)

    async def fills(self, order_id: str) -> list[Fill]:
        return await self._call("read", SqliteDb.fills, order_id)

    async def append_journal(self, client_order_id: str, entries: Sequence[bytes]) -> None:
        if entries:
            await self._call("update", SqliteDb.append_journal, client_order_id, list(entries))

    async def append_journal_many(self, batch: Mapping[str, Sequence[bytes]]) -> None:
        """One transaction for the whole batch."""
        rows = {coid: list(entries) for coid, entries in batch.items() if entries}
        if rows:
            await self._call("update", SqliteDb.append_journal_many, rows)

    async def journal(self, client_order_id: str) -> list[bytes]:
        return await self._call("read", SqliteDb.journal, client_order_id)

    async def ping(self) -> None:
        await self._call("read", SqliteDb.ping)

    async def close(self) -> None:
        """Finish queued calls, close the connection, stop the helpers. Idempotent. The
        claim log goes away only when every claim in it is stored (a clean stop)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._runner.run(self._close_db, "alone")
            await self._runner.drain()
        finally:
            self._checkpointer.stop()
            self._runner.close()
            if self._early is not None:
                self._early.close()

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()


def _at_most_normal(level: str) -> str:
    """What the connection commits at: FULL/EXTRA become NORMAL plus an fsync off the loop."""
    return "NORMAL" if SYNC_STRENGTH[level] >= SYNC_STRENGTH["FULL"] else level
