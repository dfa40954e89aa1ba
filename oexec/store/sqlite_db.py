"""The synchronous SQLite side of SqliteStore: schema and one method per store operation.

Every method runs on the event loop's thread (see oexec/store/sqlite.py). Called on its
own, each write is one transaction; ``run_batch`` runs a batch of them as one group
commit (one transaction, one COMMIT at the strongest level any of its writes needs; a job
that fails after writing is undone alone - see ``_run_transaction``). Writes use ``BEGIN
IMMEDIATE`` so that two processes sharing the file serialise on the write lock before
they read, which makes the read-check-write of a claim or a save atomic across processes
too; ``claims.request_id`` is the primary key, so even a bug cannot store two claims of
one request.

Expiry mirrors the Redis TTLs: rows carry ``expires_at`` (ms), reads ignore expired rows,
and ``purge`` deletes them (at open and then at most once per ``PURGE_INTERVAL_S``). As in
Redis, ``history`` covers orders created within the order TTL of now.

Why one module over ~400 lines: the schema and one short method per OrderStore operation
(about thirty), plus the group commit that runs them; the statements of one operation
share a transaction and the helpers below, and tests/store checks them as one unit (the
event log's SQL, a separate concern, is in sqlite_events.py).
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from oexec.models import Fill, Order
from oexec.service.ports import (
    ClaimResult,
    OutboxEntry,
    outbox_id_for_fill,
    outbox_id_for_order,
)
from oexec.store import codec, failures, sqlite_events
from oexec.store.keys import JOURNAL_MAX_ENTRIES
from oexec.store.sqlite_loop import BatchJob, Outcome, attempt

PURGE_INTERVAL_S = 3600
BUSY_TIMEOUT_MS = 5000
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    is_open INTEGER NOT NULL,
    body BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_history ON orders (created_at, id);
CREATE INDEX IF NOT EXISTS orders_symbol_history ON orders (symbol, created_at, id);
CREATE INDEX IF NOT EXISTS orders_open ON orders (created_at, id) WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS orders_symbol_open ON orders (symbol, created_at, id)
    WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS orders_client_order_id ON orders (client_order_id, created_at);
CREATE INDEX IF NOT EXISTS orders_expires ON orders (expires_at);
CREATE TABLE IF NOT EXISTS claims (
    request_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS replies (
    request_id TEXT PRIMARY KEY,
    reply BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    entry BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS state_history_order ON state_history (order_id, seq);
CREATE TABLE IF NOT EXISTS fills (
    symbol TEXT NOT NULL,
    trade_id INTEGER NOT NULL,
    order_id TEXT NOT NULL,
    body BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);
CREATE INDEX IF NOT EXISTS fills_order ON fills (order_id);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL,
    entry BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_order ON journal (client_order_id, seq);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    stamp INTEGER NOT NULL,
    body BLOB NOT NULL
);
DROP INDEX IF EXISTS outbox_stamp;
CREATE TABLE IF NOT EXISTS owed_fills (
    order_id TEXT PRIMARY KEY
);
"""

_ORDER_INSERT = """
INSERT INTO orders (id, request_id, client_order_id, symbol, created_at, version, is_open,
                    body, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
#: The claim of a request id: taken when it is new or its claim has expired (rowcount 1),
#: left alone while a live claim holds it (rowcount 0).
_CLAIM = """
INSERT INTO claims (request_id, order_id, expires_at) VALUES (?, ?, ?)
ON CONFLICT (request_id) DO UPDATE SET order_id = excluded.order_id,
    expires_at = excluded.expires_at
WHERE claims.expires_at <= ?
"""
_ORDER_UPDATE = """
UPDATE orders SET version = ?, is_open = ?, body = ?, expires_at = ?
WHERE id = ? AND version = ? AND expires_at > ?
"""
_HISTORY = """
SELECT body FROM orders
WHERE {where} expires_at > ? AND created_at BETWEEN ? AND ?
ORDER BY created_at DESC, id DESC LIMIT ?
"""
_JOURNAL_TRIM = """
DELETE FROM journal WHERE client_order_id = ? AND seq <= (
    SELECT seq FROM journal WHERE client_order_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?
)
"""
#: Rows per journal INSERT: a flush writes its entries in one multi-row statement per
#: this many (each executemany row was a statement: ~4 per order on the sync bench row).
_JOURNAL_CHUNK = 64
#: Orders whose appended-entry count this connection keeps (the trim's trigger); past
#: it the counts start again from zero (see ``append_journal_many``).
_JOURNAL_COUNTED = 100_000
#: The newest JOURNAL_MAX_ENTRIES of one order, newest first (the reader reverses them):
#: what a reader sees even while more rows are stored (a trim runs only once this
#: connection's count of the order passes the cap).
_JOURNAL_READ = """
SELECT entry FROM journal WHERE client_order_id = ? AND expires_at > ? ORDER BY seq DESC LIMIT ?
"""


@functools.cache
def _journal_insert(rows: int) -> str:
    """The journal INSERT of ``rows`` rows (one statement; seq follows the rows' order)."""
    values = ", ".join(["(?, ?, ?)"] * rows)
    return f"INSERT INTO journal (client_order_id, entry, expires_at) VALUES {values}"


_MAX_MS = 2**62
#: The purge of an append-only table whose rows all live the order TTL (fills, journal):
#: its expired rows are the oldest, so it deletes the rowids before the first live one,
#: found by a scan from the oldest row that stops there, instead of scanning the whole
#: table (which ran on the event loop once an hour). A row written with a shorter TTL
#: than an older one's (the TTL lowered across a restart, the clock stepped back) waits
#: for the rows before it to expire; reads skip it meanwhile.
_PURGE_OLDEST = """
DELETE FROM {table} WHERE rowid < coalesce(
    (SELECT rowid FROM {table} WHERE expires_at > ? ORDER BY rowid LIMIT 1), 9223372036854775807
) AND expires_at <= ?
"""


class SqliteDb:
    """One connection to one database file. Not thread-safe: one thread owns it."""

    def __init__(
        self,
        path: str,
        *,
        order_ttl_s: int,
        synchronous: str = "FULL",
        update_synchronous: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        modes = (synchronous.upper(), (update_synchronous or synchronous).upper())
        if not set(modes) <= set(SYNCHRONOUS_MODES):
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        # Claims (and releases) commit at ``synchronous``; every other write at
        # ``update_synchronous``. In WAL mode a later FULL commit fsyncs the whole log, so
        # cheaper updates become power-loss durable with the next claim.
        self._claim_sync, self._update_sync = modes
        self._sync_now = self._claim_sync
        #: The level of the group transaction open in ``run_batch`` (None outside one),
        #: whether its jobs get a savepoint each (only when a batch is run again after a
        #: job failed half-way, see ``_run_transaction``), and whether the job running
        #: in it has set its savepoint.
        self._batch_sync: str | None = None
        self._savepoints = False
        self._job_savepoint = False
        #: COMMITs that succeeded on this connection (diagnostics and tests).
        self.commits = 0
        #: the event log's numbers as stored (sqlite_events.Numbers), None: read them
        self._event_numbers: sqlite_events.Numbers | None = None
        self._order_ttl_ms = order_ttl_s * 1000
        self._clock = clock
        #: journal entries this connection appended per client order id (the trim's
        #: trigger, see ``append_journal_many``)
        self._journal_counts: dict[str, int] = {}
        # 256 prepared statements kept (128 by default): the journal INSERT alone has
        # one text per row count up to _JOURNAL_CHUNK.
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        _while_busy(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
        _while_busy(lambda: self._conn.executescript(SCHEMA + sqlite_events.SCHEMA))
        self._next_purge = 0.0
        self.purge()

    def close(self) -> None:
        self._conn.close()

    def disable_autocheckpoint(self) -> None:
        """Never checkpoint inside a COMMIT: the owner checkpoints elsewhere (the store's
        checkpointer thread, oexec/store/sqlite_loop.py)."""
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _set_sync(self, sync: str) -> None:
        if sync != self._sync_now:  # a pragma, only outside a transaction; ~1 µs
            self._conn.execute(f"PRAGMA synchronous = {sync}")
            self._sync_now = sync

    @contextmanager
    def _write(self, *, claim: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction of its own, or the running job's part of the batch's."""
        sync = self._claim_sync if claim else self._update_sync
        if self._batch_sync is not None:
            yield self._in_batch(sync)
            return
        self._set_sync(sync)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
            self.commits += 1
        except BaseException:
            self._event_numbers = None  # what was appended may not have landed
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _in_batch(self, sync: str) -> sqlite3.Connection:
        """A write inside the group transaction: never below the level it needs (a job
        mislabelled as weaker fails instead of committing weaker); when savepoints are
        on, its job's savepoint is set at its first write (read-only jobs cost none)."""
        assert self._batch_sync is not None
        if SYNC_STRENGTH[sync] > SYNC_STRENGTH[self._batch_sync]:
            raise RuntimeError(f"a {sync} write in a batch committing at {self._batch_sync}")
        if self._savepoints and not self._job_savepoint:
            self._conn.execute("SAVEPOINT job")
            self._job_savepoint = True
        return self._conn

    # --- group commit -------------------------------------------------------------------
    def run_batch(self, jobs: Sequence[BatchJob]) -> list[Outcome]:
        """Run the jobs in order as few group commits; one outcome per job.

        Jobs of kind "alone" run between transactions; the others run in one transaction
        per run of them. An outcome of a write is only reported once its COMMIT is done.
        """
        outcomes: list[Outcome] = []
        group: list[BatchJob] = []
        for job in jobs:
            if job[1] != "alone":
                group.append(job)
                continue
            outcomes += self._run_group(group)
            group = []
            outcomes.append(attempt(job[0]))
        outcomes += self._run_group(group)
        return outcomes

    def _run_group(self, jobs: Sequence[BatchJob]) -> list[Outcome]:
        if len(jobs) == 1:  # nothing to share: its own transaction, no savepoint
            return [attempt(jobs[0][0])]
        outcomes: list[Outcome] = []
        while len(outcomes) < len(jobs):  # more than one pass only if SQLite rolled back
            outcomes += self._run_transaction(jobs[len(outcomes) :])
        return outcomes

    def _run_transaction(self, jobs: Sequence[BatchJob]) -> list[Outcome]:
        """Run a prefix of ``jobs`` (all of them unless SQLite rolls the transaction
        back on its own) in one transaction and return their outcomes.

        Optimistic: the jobs run without savepoints (a SAVEPOINT and a RELEASE per job
        were ~6 of the ~34 statements per order on the sync bench row). A job that fails
        without having changed a row needs none. Only when a job fails after changing
        rows (a claim whose order id is taken, an I/O error half-way) is the whole
        transaction rolled back and the batch run again, each job in its own savepoint,
        so that job's writes go and the others' stay, as always."""
        kinds = {kind for _, kind in jobs}
        if "claim" in kinds:
            sync = max(self._claim_sync, self._update_sync, key=SYNC_STRENGTH.__getitem__)
        elif "update" in kinds:
            sync = self._update_sync
        else:
            return [attempt(fn) for fn, _ in jobs]  # reads only: no transaction
        next_purge = self._next_purge
        try:
            return self._transaction(jobs, sync, savepoints=False)
        except _HalfDone:  # rolled back: nothing of the first pass is stored
            self._next_purge = next_purge  # a purge in it did not land either
            return self._transaction(jobs, sync, savepoints=True)

    def _transaction(
        self, jobs: Sequence[BatchJob], sync: str, *, savepoints: bool
    ) -> list[Outcome]:
        try:
            self._set_sync(sync)
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # e.g. busy past the timeout: writes fail, reads run
            return [attempt(fn) if kind == "read" else (False, exc) for fn, kind in jobs]
        self._batch_sync = sync
        self._savepoints = savepoints
        outcomes: list[Outcome] = []
        # Outcomes that stand only if the COMMIT succeeds: every job that wrote, and every
        # job that ran after one (it may have read what then did not land).
        pending: list[int] = []
        try:
            for fn, _ in jobs:
                self._job_savepoint = False
                changes = self._conn.total_changes
                ok, value = attempt(fn)
                wrote = self._job_savepoint or self._conn.total_changes != changes
                if not self._conn.in_transaction:
                    # SQLite rolled the whole transaction back (I/O error, disk full):
                    # nothing of it landed; the jobs after this one get a new one.
                    lost = sqlite3.OperationalError(f"batch transaction rolled back: {value}")
                    self._event_numbers = None
                    return [*_failed(outcomes, pending, lost), (False, value if not ok else lost)]
                if self._job_savepoint:
                    if not ok:
                        self._conn.execute("ROLLBACK TO job")
                    self._conn.execute("RELEASE job")
                elif wrote and not ok and not savepoints:  # none to undo only its writes
                    self._conn.execute("ROLLBACK")
                    self._event_numbers = None
                    raise _HalfDone
                if ok and (wrote or pending):
                    pending.append(len(outcomes))
                outcomes.append((ok, value))
            self._conn.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:  # the COMMIT (or a savepoint step) failed
            self._event_numbers = None
            if self._conn.in_transaction:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            outcomes = _failed(outcomes, pending, exc)
            outcomes += [(False, exc)] * (len(jobs) - len(outcomes))
        finally:
            self._batch_sync = None
            self._savepoints = self._job_savepoint = False
        return outcomes

    # --- writes -------------------------------------------------------------------------
    def claim(
        self, order: Order, ttl_s: int, events: bytes | None = None, body: bytes | None = None
    ) -> ClaimResult:
        """``body``: the order's bytes when the caller has them (the early claim logged
        them: one encoding per order, ~13 µs, not two)."""
        now = self._now_ms()
        if self._clock() >= self._next_purge:
            self.purge()
        with self._write(claim=True) as db:
            # One statement claims a new (or expired) request id; none taken: a live claim
            # holds it, and this is a lost claim (or a retry of this very one).
            if not db.execute(
                _CLAIM, (order.request_id, order.id, now + ttl_s * 1000, now)
            ).rowcount:
                claimed_by = _live_claim(db, order.request_id, now)
                if claimed_by is None:  # cannot be: the upsert saw it live at ``now``
                    raise failures.claim_orphaned(order.request_id, order.id)
                return self._lost_claim(db, order, claimed_by, now)
            db.execute("DELETE FROM replies WHERE request_id = ?", (order.request_id,))
            try:  # the primary key says whether the id is taken (no read first)
                db.execute(
                    _ORDER_INSERT,
                    (
                        order.id,
                        order.request_id,
                        order.client_order_id,
                        order.symbol,
                        order.created_at,
                        order.version,
                        int(not order.is_terminal),
                        codec.encode_order(order) if body is None else body,
                        now + self._order_ttl_ms,
                    ),
                )
            except sqlite3.IntegrityError as exc:  # the job's writes are rolled back
                if exc.sqlite_errorname != "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise
                raise failures.id_taken(order) from exc
            self._append_state(db, order, "claim")
            if events:
                _outbox_put(db, outbox_id_for_order(order), now, events)
        return ClaimResult(claimed=True, order=order)

    def claimed(self, request_id: str) -> bool:
        """Whether ``request_id`` holds a live claim (read outside any transaction: the
        early claim's check of a request id not among those in flight)."""
        return _live_claim(self._conn, request_id, self._now_ms()) is not None

    def _lost_claim(
        self, db: sqlite3.Connection, order: Order, existing_id: str, now: int
    ) -> ClaimResult:
        existing = self._get(db, existing_id, now)
        if existing is None:
            raise failures.claim_orphaned(order.request_id, existing_id)
        if existing_id == order.id:
            return ClaimResult(claimed=True, order=existing)
        return ClaimResult(
            claimed=False, order=existing, reply=self._reply(db, order.request_id, now)
        )

    def save(
        self,
        order: Order,
        reason: str,
        events: bytes | None = None,
        reply: bytes | None = None,
        reply_ttl_s: int = 0,
        owes_fills: bool = False,
    ) -> None:
        now = self._now_ms()
        body = codec.encode_order(order)
        with self._write() as db:
            updated = db.execute(
                _ORDER_UPDATE,
                (
                    order.version,
                    int(not order.is_terminal),
                    body,
                    now + self._order_ttl_ms,
                    order.id,
                    order.version - 1,
                    now,
                ),
            ).rowcount
            if updated == 1:
                self._append_state(db, order, reason)
                if events:
                    _outbox_put(db, outbox_id_for_order(order), now, events)
                if reply is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO replies VALUES (?, ?, ?)",
                        (order.request_id, reply, now + reply_ttl_s * 1000),
                    )
                if owes_fills:
                    db.execute("INSERT OR IGNORE INTO owed_fills VALUES (?)", (order.id,))
                return
            row = db.execute(
                "SELECT version, body FROM orders WHERE id = ? AND expires_at > ?",
                (order.id, now),
            ).fetchone()
        if row is not None and row[0] == order.version and bytes(row[1]) == body:
            return  # the same save already landed
        raise failures.version_conflict(order, None if row is None else int(row[0]))

    def release(self, order: Order) -> bool:
        with self._write(claim=True) as db:
            if not db.execute(
                "DELETE FROM orders WHERE id = ? AND version = ?", (order.id, order.version)
            ).rowcount:
                return False
            db.execute(
                "DELETE FROM claims WHERE request_id = ? AND order_id = ?",
                (order.request_id, order.id),
            )
            db.execute("DELETE FROM replies WHERE request_id = ?", (order.request_id,))
            db.execute("DELETE FROM state_history WHERE order_id = ?", (order.id,))
        return True

    def save_reply(self, request_id: str, reply: bytes, ttl_s: int) -> None:
        expires = self._now_ms() + ttl_s * 1000
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?)", (request_id, reply, expires)
            )

    def add_fill(self, fill: Fill, events: bytes | None = None) -> bool:
        now = self._now_ms()
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?)",
                (
                    fill.symbol,
                    fill.trade_id,
                    fill.order_id,
                    codec.encode_fill(fill),
                    now + self._order_ttl_ms,
                ),
            )
            new = cursor.rowcount == 1
            if new and events:
                _outbox_put(db, outbox_id_for_fill(fill), now, events)
            return new

    def outbox_take(self, older_than_ms: int, limit: int) -> list[OutboxEntry]:
        now = self._now_ms()
        with self._write() as db:
            rows = db.execute(
                "SELECT id, body FROM outbox WHERE stamp < ? ORDER BY stamp, id LIMIT ?",
                (older_than_ms, limit),
            ).fetchall()
            db.executemany("UPDATE outbox SET stamp = ? WHERE id = ?", [(now, r[0]) for r in rows])
        return [OutboxEntry(id=r[0], body=bytes(r[1])) for r in rows]

    def outbox_put(self, entry_id: str, body: bytes) -> None:
        with self._write() as db:
            _outbox_put(db, entry_id, self._now_ms(), body)

    def outbox_ack(self, entry_ids: list[str]) -> None:
        with self._write() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in entry_ids])

    # --- the event log (oexec/store/sqlite_events.py) ------------------------------------
    def events_open(self) -> tuple[int, str]:
        with self._write() as db:
            return sqlite_events.open_log(db)

    def events_append(self, batch: list[sqlite_events.Appended]) -> list[tuple[int, int]]:
        with self._write() as db:
            numbers, self._event_numbers = sqlite_events.append(db, batch, self._event_numbers)
            return numbers

    def events_read(self, from_seq: int, limit: int) -> tuple[list[sqlite_events.Row], int, int]:
        return sqlite_events.read(self._conn, from_seq, limit)

    def events_trim(self, older_than_ms: int, max_events: int) -> int:
        with self._write() as db:
            return sqlite_events.trim(db, older_than_ms, max_events, self._event_numbers)

    def owed_fills(self) -> list[str]:
        rows = self._conn.execute("SELECT order_id FROM owed_fills ORDER BY order_id").fetchall()
        return [r[0] for r in rows]

    def settle_fills(self, order_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM owed_fills WHERE order_id = ?", (order_id,))

    def append_journal(self, client_order_id: str, entries: list[bytes]) -> None:
        """``append_journal_many`` of one order."""
        self.append_journal_many({client_order_id: entries})

    def append_journal_many(self, batch: dict[str, list[bytes]]) -> None:
        """Append every order's entries, in one transaction: one multi-row INSERT per
        ``_JOURNAL_CHUNK`` entries, and a trim (drop an order's entries beyond the newest
        JOURNAL_MAX_ENTRIES) only for an order whose count passes the cap.

        The count is this connection's: the entries it appended per order since it
        opened (or since the counts last started again), set back to the cap by a trim.
        It can only be lower than the rows stored (another process's appends, a restart,
        counts started again), so an order can hold more than the cap for a while
        (about one cap's worth more per writer or restart); readers see the newest
        JOURNAL_MAX_ENTRIES all the same (``_JOURNAL_READ``), as on Redis. A count that
        is higher (a transaction rolled back) only trims early, which deletes nothing.
        Before: an INSERT per entry and a trim per order and flush (~5 of ~27
        statements per order on the sync bench row)."""
        expires = self._now_ms() + self._order_ttl_ms
        params = [
            value
            for coid, entries in batch.items()
            for entry in entries
            for value in (coid, entry, expires)
        ]
        counts = self._journal_counts
        if len(counts) + len(batch) > _JOURNAL_COUNTED:
            counts.clear()
        trim = []
        for coid, entries in batch.items():
            count = counts.get(coid, 0) + len(entries)
            if count > JOURNAL_MAX_ENTRIES:
                trim.append((coid, coid, JOURNAL_MAX_ENTRIES))
                count = JOURNAL_MAX_ENTRIES
            counts[coid] = count
        step = 3 * _JOURNAL_CHUNK
        with self._write() as db:
            for start in range(0, len(params), step):
                chunk = params[start : start + step]
                db.execute(_journal_insert(len(chunk) // 3), chunk)
            if trim:
                db.executemany(_JOURNAL_TRIM, trim)

    def purge(self) -> int:
        """Delete expired rows; returns how many orders went."""
        now = self._now_ms()
        self._next_purge = self._clock() + PURGE_INTERVAL_S
        with self._write() as db:
            gone = db.execute("SELECT id FROM orders WHERE expires_at <= ?", (now,)).fetchall()
            db.executemany("DELETE FROM state_history WHERE order_id = ?", gone)
            db.execute("DELETE FROM orders WHERE expires_at <= ?", (now,))
            for table in ("claims", "replies"):  # scans: expiry differs row to row
                db.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))
            for table in ("fills", "journal"):
                db.execute(_PURGE_OLDEST.format(table=table), (now, now))
        return len(gone)

    @staticmethod
    def _append_state(db: sqlite3.Connection, order: Order, reason: str) -> None:
        db.execute(
            "INSERT INTO state_history (order_id, entry) VALUES (?, ?)",
            (order.id, codec.state_entry(order, reason)),
        )

    # --- reads --------------------------------------------------------------------------
    def get_reply(self, request_id: str) -> bytes | None:
        return self._reply(self._conn, request_id, self._now_ms())

    def get(self, order_id: str) -> Order | None:
        return self._get(self._conn, order_id, self._now_ms())

    def get_by_request_id(self, request_id: str) -> Order | None:
        now = self._now_ms()
        row = self._conn.execute(
            "SELECT o.body FROM claims c JOIN orders o ON o.id = c.order_id "
            "WHERE c.request_id = ? AND c.expires_at > ? AND o.expires_at > ?",
            (request_id, now, now),
        ).fetchone()
        return None if row is None else codec.decode_order(row[0])

    def get_by_client_order_id(self, client_order_id: str) -> Order | None:
        row = self._conn.execute(
            "SELECT body FROM orders WHERE client_order_id = ? AND expires_at > ? "
            "ORDER BY created_at DESC LIMIT 1",
            (client_order_id, self._now_ms()),
        ).fetchone()
        return None if row is None else codec.decode_order(row[0])

    def open_orders(self, symbol: str | None) -> list[Order]:
        where, params = _symbol_filter(symbol)
        rows = self._conn.execute(
            f"SELECT body FROM orders WHERE {where} is_open = 1 AND expires_at > ? "
            "ORDER BY created_at, id",
            (*params, self._now_ms()),
        ).fetchall()
        return [codec.decode_order(r[0]) for r in rows]

    def open_order_count(self, symbol: str | None) -> int:
        where, params = _symbol_filter(symbol)
        row = self._conn.execute(
            # ``+expires_at``: not by the expiry index (every stored order), by the open one
            f"SELECT count(*) FROM orders WHERE {where} is_open = 1 AND +expires_at > ?",
            (*params, self._now_ms()),
        ).fetchone()
        return int(row[0])

    def history(
        self, symbol: str | None, limit: int, start_ms: int | None, end_ms: int | None
    ) -> list[Order]:
        if limit <= 0:
            return []
        where, params = _symbol_filter(symbol)
        now = self._now_ms()
        low = max(now - self._order_ttl_ms, -_MAX_MS if start_ms is None else start_ms)
        high = _MAX_MS if end_ms is None else end_ms
        rows = self._conn.execute(
            _HISTORY.format(where=where), (*params, now, low, high, limit)
        ).fetchall()
        return [codec.decode_order(r[0]) for r in rows]

    def state_history(self, order_id: str) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT entry FROM state_history WHERE order_id = ? ORDER BY seq", (order_id,)
        ).fetchall()
        return [codec.decode_state_entry(r[0]) for r in rows]

    def fills(self, order_id: str) -> list[Fill]:
        rows = self._conn.execute(
            "SELECT body FROM fills WHERE order_id = ? AND expires_at > ? ORDER BY rowid",
            (order_id, self._now_ms()),
        ).fetchall()
        return [codec.decode_fill(r[0]) for r in rows]

    def journal(self, client_order_id: str) -> list[bytes]:
        rows = self._conn.execute(
            _JOURNAL_READ, (client_order_id, self._now_ms(), JOURNAL_MAX_ENTRIES)
        ).fetchall()
        return [bytes(r[0]) for r in reversed(rows)]

    def ping(self) -> None:
        self._conn.execute("SELECT 1").fetchone()

    @staticmethod
    def _get(db: sqlite3.Connection, order_id: str, now: int) -> Order | None:
        row = db.execute(
            "SELECT body FROM orders WHERE id = ? AND expires_at > ?", (order_id, now)
        ).fetchone()
        return None if row is None else codec.decode_order(row[0])

    @staticmethod
    def _reply(db: sqlite3.Connection, request_id: str, now: int) -> bytes | None:
        row = db.execute(
            "SELECT reply FROM replies WHERE request_id = ? AND expires_at > ?",
            (request_id, now),
        ).fetchone()
        return None if row is None else bytes(row[0])


def _live_claim(db: sqlite3.Connection, request_id: str, now_ms: int) -> str | None:
    """The id of the order holding a live claim of ``request_id``, if any."""
    row = db.execute(
        "SELECT order_id FROM claims WHERE request_id = ? AND expires_at > ?", (request_id, now_ms)
    ).fetchone()
    return None if row is None else str(row[0])


#: Each synchronous level by strength (a write may only commit at its level or above).
SYNC_STRENGTH = {mode: rank for rank, mode in enumerate(SYNCHRONOUS_MODES)}


class _HalfDone(Exception):
    """A batch job failed after changing rows, with no savepoint to undo only its part:
    the batch's transaction is rolled back, and the batch runs again with savepoints."""


def _failed(outcomes: list[Outcome], pending: list[int], exc: BaseException) -> list[Outcome]:
    """``outcomes`` with every pending one replaced by the failure ``exc``."""
    failed = list(outcomes)
    for index in pending:
        failed[index] = (False, exc)
    return failed


def _outbox_put(db: sqlite3.Connection, entry_id: str, stamp: int, body: bytes) -> None:
    db.execute("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?)", (entry_id, stamp, body))


def _while_busy(step: Callable[[], object]) -> None:
    """Run a set-up step, retrying while another connection holds the lock.

    Switching to WAL and creating the schema can report SQLITE_BUSY at once, without the
    busy handler, when two processes open a new file together.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def _symbol_filter(symbol: str | None) -> tuple[str, tuple[str, ...]]:
    return ("", ()) if symbol is None else ("symbol = ? AND", (symbol,))
