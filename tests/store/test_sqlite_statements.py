"""The SQL one order costs on the SQLite store (issue 14: SQL was ~28 % of the daemon's CPU
on the sync bench row), pinned by counting the statements SQLite runs - each counted
by the connection's ``set_trace_callback``, every row of an ``executemany`` included -
so that a statement added to the order path shows here. Counts, not timings.

Also what the cuts rely on: the event log's numbers continue across a reopen although
each append writes only the events (the checkpoint is written by a trim), a claim
finds a taken order id by the primary key, and a batch runs without savepoints unless a
job fails after writing.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from oexec.errors import StoreConflictError
from oexec.models import Order, OrderState
from oexec.store import SqliteStore, codec, sqlite_db
from oexec.store.keys import JOURNAL_MAX_ENTRIES
from oexec.store.sqlite_db import SqliteDb

from .helpers import evolve, make_fill, make_order

TTL = 3_600
_TRADE_IDS = itertools.count(1)


class Statements:
    """Statements run on one connection, by their first words."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, sql: str) -> None:
        self.seen.append(" ".join(sql.split()[:4]))

    def take(self) -> Counter[str]:
        seen, self.seen = Counter(self.seen), []
        return seen


def trace(db: SqliteDb) -> Statements:
    statements = Statements()
    db._conn.set_trace_callback(statements)
    return statements


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """The daemon's store: early claims (the claim log), NORMAL commits."""
    store = SqliteStore(
        str(tmp_path / "s.sqlite"),
        synchronous="NORMAL",
        update_synchronous="NORMAL",
        claim_log=True,
    )
    await store.start()
    yield store
    await store.close()


def db_of(store: SqliteStore) -> SqliteDb:
    assert store._db is not None
    return store._db


async def one_order(store: SqliteStore, statements: Statements) -> dict[str, int]:
    """The store calls of one filled MARKET order on the sync bench row, each on its own
    (so in its own batch); the statements each cost."""
    order = make_order()
    costs: dict[str, int] = {}

    async def step(name: str, call: Awaitable[object]) -> None:
        await call
        costs[name] = sum(statements.take().values())

    claimed = await store.claim(order, TTL, early=True)
    assert claimed.claimed and claimed.durable is not None
    await claimed.durable
    costs["claim"] = sum(statements.take().values())
    filled = evolve(order, state=OrderState.FILLED)
    await step(
        "save",
        store.save(
            filled,
            reason="venue accepted",
            events=b"e",
            reply=b"r",
            reply_ttl_s=TTL,
            owes_fills=True,
        ),
    )
    fill = make_fill(order, next(_TRADE_IDS), qty="0.010")
    await step("add_fill", store.add_fill(fill, events=b"f"))
    await step("outbox_put", store.outbox_put("account-1", b"a"))
    await step(
        "events_append",
        store.events_append(
            [(t, b"x", 1) for t in ("order.filled", "fill", "position", "balance")]
        ),
    )
    await step("outbox_ack", store.outbox_ack(["o-1", "f-1", "account-1"]))
    await step(
        "journal", store.append_journal_many({order.client_order_id: [b"1", b"2", b"3", b"4"]})
    )
    await step("settle_fills", store.settle_fills(order.id))
    return costs


async def test_statements_of_one_order_are_pinned(store: SqliteStore) -> None:
    """Each call's statements, BEGIN and COMMIT included (a call alone in its batch is its
    own transaction). Before issue 14's cut (session 5): claim 9 (a live-claim read and an
    order-id read in the transaction besides the early claim's read), events_append 11
    (each topic's row and the seq row too); 42.7 per order on the bench row, then 27.3.
    Before the journal's cut (session 6): journal 7 (an INSERT per entry, a trim per
    order and flush)."""
    statements = trace(db_of(store))
    await one_order(store, statements)  # warm: the first purge and event-number load
    costs = await one_order(store, statements)
    assert costs == {
        # the early claim's read; BEGIN, claim upsert, stale reply delete, order, history, COMMIT
        "claim": 7,
        # BEGIN, order update, history, outbox, reply, owed-fills mark, COMMIT
        "save": 7,
        "add_fill": 4,  # BEGIN, fill, outbox, COMMIT
        "outbox_put": 3,
        "events_append": 6,  # BEGIN, one INSERT per event and nothing else, COMMIT
        "outbox_ack": 5,
        "journal": 3,  # BEGIN, one INSERT of the 4 entries (no trim below the cap), COMMIT
        "settle_fills": 3,
    }


async def test_a_batch_of_orders_costs_no_savepoints(store: SqliteStore) -> None:
    """Ten orders' claims, saves and fills in one loop turn: one transaction, and only
    their data statements in it."""
    orders = [make_order() for _ in range(10)]
    for order in orders:
        await store.claim(order, TTL)
    await store.events_append([("fill", b"x", 1)])  # the event numbers are loaded once
    statements = trace(db_of(store))
    await asyncio.gather(
        *(
            store.save(evolve(o, state=OrderState.FILLED), reason="r", events=b"e", reply=b"r")
            for o in orders
        ),
        *(store.add_fill(make_fill(o, n), events=b"f") for n, o in enumerate(orders)),
        store.events_append([("fill", b"x", 1)] * 20),
    )
    seen = statements.take()
    assert seen["BEGIN IMMEDIATE"] == 1 and seen["COMMIT"] == 1
    assert not [s for s in seen if s.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))]
    # per order: update, history, outbox, reply; fill, outbox; and the 20 events
    assert sum(seen.values()) == 2 + 10 * (4 + 2) + 20


def test_a_taken_order_id_is_found_by_the_key_and_nothing_of_the_claim_stays(
    tmp_path: Path,
) -> None:
    db = SqliteDb(str(tmp_path / "s.sqlite"), order_ttl_s=TTL)
    taken = make_order()
    db.claim(taken, 60)
    other = make_order(order_id=taken.id)
    with pytest.raises(StoreConflictError, match="order id already stored"):
        db.claim(other, 60)
    assert db.get_by_request_id(other.request_id) is None
    assert not db.claimed(other.request_id)
    assert db.get(taken.id) == taken
    db.close()


def test_event_numbers_continue_across_reopens_and_trims(tmp_path: Path) -> None:
    """Appends write only the events; a reopened log continues from them, and from the
    checkpoint a trim writes when it deletes the last of them."""
    path = str(tmp_path / "s.sqlite")
    db = SqliteDb(path, order_ttl_s=TTL)
    assert db.events_open()[0] == 0
    assert db.events_append([("fill", b"a", 1), ("order.new", b"b", 1), ("fill", b"c", 1)]) == [
        (1, 1),
        (2, 1),
        (3, 2),
    ]
    db.close()

    db = SqliteDb(path, order_ttl_s=TTL)  # a restart: numbers from the events
    assert db.events_open()[0] == 3
    assert db.events_append([("fill", b"d", 2)]) == [(4, 3)]
    assert db.events_trim(older_than_ms=10, max_events=1_000) == 4  # every event is old
    assert db.events_read(1, 10) == ([], 4, 4)
    db.close()

    db = SqliteDb(path, order_ttl_s=TTL)  # no events left: the trim's checkpoint
    assert db.events_open()[0] == 4
    assert db.events_append([("order.new", b"e", 20), ("fill", b"f", 20)]) == [(5, 2), (6, 4)]
    db.close()

    db = SqliteDb(path, order_ttl_s=TTL)  # checkpoint and the events after it
    assert db.events_append([("fill", b"g", 30), ("other", b"h", 30)]) == [(7, 5), (8, 1)]
    assert db.events_trim(older_than_ms=25, max_events=1_000) == 2  # 5 and 6
    rows, trimmed, last = db.events_read(1, 10)
    assert [(seq, topic, topic_seq) for seq, topic, topic_seq, _ in rows] == [
        (7, "fill", 5),
        (8, "other", 1),
    ]
    assert (trimmed, last) == (6, 8)
    assert db.events_trim(older_than_ms=25, max_events=1_000) == 0  # nothing old
    # ... and its checkpoint is written all the same: a reopen reads only what follows it
    checkpoint = db._conn.execute("SELECT value FROM event_state WHERE name = 'seq'")
    assert checkpoint.fetchone()[0] == 8
    db.close()

    db = SqliteDb(path, order_ttl_s=TTL)
    assert db.events_append([("fill", b"i", 40), ("order.new", b"j", 40)]) == [(9, 6), (10, 3)]
    db.close()


def test_indexes_left_are_each_used_by_a_query(tmp_path: Path) -> None:
    """No index is kept up on every write for a query that does not use it (the events'
    and the outbox's stamp indexes went: their scans read about what they then delete,
    or a table of the few entries in flight)."""
    db = SqliteDb(str(tmp_path / "s.sqlite"), order_ttl_s=TTL)
    names = {
        row[0]
        for row in db._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    }
    assert "events_stamp" not in names and "outbox_stamp" not in names
    used: set[str] = set()
    queries = [  # every query that reads a table with an index of its own
        "SELECT body FROM orders WHERE client_order_id = ? AND expires_at > ? "
        "ORDER BY created_at DESC LIMIT 1",
        "SELECT body FROM orders WHERE is_open = 1 AND expires_at > ? ORDER BY created_at, id",
        "SELECT body FROM orders WHERE symbol = ? AND is_open = 1 AND expires_at > ? "
        "ORDER BY created_at, id",
        "SELECT count(*) FROM orders WHERE is_open = 1 AND +expires_at > ?",
        "SELECT body FROM orders WHERE expires_at > ? AND created_at BETWEEN ? AND ? "
        "ORDER BY created_at DESC, id DESC LIMIT ?",
        "SELECT body FROM orders WHERE symbol = ? AND expires_at > ? AND created_at BETWEEN ? "
        "AND ? ORDER BY created_at DESC, id DESC LIMIT ?",
        "SELECT id FROM orders WHERE expires_at <= ?",
        "SELECT entry FROM state_history WHERE order_id = ? ORDER BY seq",
        "SELECT body FROM fills WHERE order_id = ? AND expires_at > ? ORDER BY rowid",
        "SELECT entry FROM journal WHERE client_order_id = ? AND expires_at > ? "
        "ORDER BY seq DESC LIMIT ?",
    ]
    for query in queries:
        plan = db._conn.execute("EXPLAIN QUERY PLAN " + query, (0,) * query.count("?"))
        used |= {m for row in plan for m in re.findall(r"INDEX (\w+)", row[3])}
    assert names - used == set()
    db.close()


async def test_an_early_claim_encodes_its_order_once(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim log's bytes of the order are the ones stored (one encoding, not two)."""
    encoded: list[bytes] = []
    encode = codec.encode_order

    def counting(order: Order) -> bytes:
        encoded.append(encode(order))
        return encoded[-1]

    monkeypatch.setattr(codec, "encode_order", counting)
    order = make_order()
    claimed = await store.claim(order, TTL, early=True)
    assert claimed.durable is not None
    await claimed.durable
    assert len(encoded) == 1
    assert await store.get(order.id) == order
    row = db_of(store)._conn.execute("SELECT body FROM orders WHERE id = ?", (order.id,))
    assert bytes(row.fetchone()[0]) == encoded[0]


def test_the_journal_is_trimmed_only_past_the_cap_and_read_capped(tmp_path: Path) -> None:
    """A flush is one INSERT per 64 entries; an order's entries are trimmed only in the
    flush that takes this connection's count past the cap. Rows another writer added
    (not in this connection's count) can leave more than the cap stored for a while; a
    reader still gets exactly the newest JOURNAL_MAX_ENTRIES, oldest first."""
    path = str(tmp_path / "s.sqlite")
    db, other = SqliteDb(path, order_ttl_s=TTL), SqliteDb(path, order_ttl_s=TTL)
    statements = trace(db)
    entries = [f'{{"n":{i}}}'.encode() for i in range(JOURNAL_MAX_ENTRIES + 200)]
    db.append_journal_many({"a": entries[:130], "b": entries[:1]})
    seen = statements.take()
    assert seen["INSERT INTO journal (client_order_id,"] == 3  # 64 + 64 + 3 rows
    assert seen["DELETE FROM journal WHERE"] == 0
    other.append_journal_many({"a": entries[130:430]})  # not in db's count
    db.append_journal_many({"a": entries[430:500]})  # db's count: 200, no trim
    assert statements.take()["DELETE FROM journal WHERE"] == 0
    stored = db._conn.execute("SELECT count(*) FROM journal WHERE client_order_id = 'a'")
    assert stored.fetchone()[0] == 500
    other.append_journal_many({"a": entries[500:650]})  # 650 stored, no count past the cap
    assert db.journal("a") == entries[150:650] == other.journal("a")
    assert db.journal("b") == entries[:1]
    db.append_journal_many({"a": entries[650:]})  # db's count 250: still no trim
    assert statements.take()["DELETE FROM journal WHERE"] == 0
    assert db.journal("a") == entries[200:]
    other.append_journal_many({"a": [b"x"]})  # other's count 451: still below the cap
    assert db.journal("a") == [*entries[201:], b"x"]
    db.append_journal_many({"a": entries[:251]})  # db's count 501: trimmed to the cap
    assert statements.take()["DELETE FROM journal WHERE"] == 1
    stored = db._conn.execute("SELECT count(*) FROM journal WHERE client_order_id = 'a'")
    assert stored.fetchone()[0] == JOURNAL_MAX_ENTRIES
    assert db.journal("a") == [*entries[451:], b"x", *entries[:251]][-JOURNAL_MAX_ENTRIES:]
    db.append_journal_many({"a": [b"y"]})  # at the cap: each flush past it trims
    assert statements.take()["DELETE FROM journal WHERE"] == 1
    db.close()
    other.close()


def test_the_purge_of_fills_and_journal_deletes_the_expired_oldest_rows(tmp_path: Path) -> None:
    """Fills and journal rows all live the order TTL, so the expired ones are the oldest:
    the purge deletes the rowids before the first live row (its plan ranges over the
    rowid, not a scan of the table) and keeps every live row."""
    now = [1_000.0]
    db = SqliteDb(str(tmp_path / "s.sqlite"), order_ttl_s=10, clock=lambda: now[0])
    order = make_order()
    db.append_journal_many({"old": [b"1", b"2"]})
    db.add_fill(make_fill(order, next(_TRADE_IDS)))
    now[0] += 6
    db.append_journal_many({"new": [b"3"]})
    young = make_fill(order, next(_TRADE_IDS))
    db.add_fill(young)
    now[0] += 6  # the first rows are expired, the later ones are not
    db.purge()
    rows = db._conn.execute("SELECT client_order_id FROM journal ORDER BY seq").fetchall()
    assert rows == [("new",)]
    assert db._conn.execute("SELECT trade_id FROM fills").fetchall() == [(young.trade_id,)]
    assert db.journal("new") == [b"3"]
    now[0] += 6  # everything expired
    db.purge()
    assert db._conn.execute("SELECT count(*) FROM journal").fetchone()[0] == 0
    assert db._conn.execute("SELECT count(*) FROM fills").fetchone()[0] == 0
    for table in ("fills", "journal"):
        plan = db._conn.execute(
            "EXPLAIN QUERY PLAN " + sqlite_db._PURGE_OLDEST.format(table=table), (0, 0)
        ).fetchall()
        assert f"SEARCH {table} USING INTEGER PRIMARY KEY (rowid<?)" in [r[3] for r in plan]
    db.close()
