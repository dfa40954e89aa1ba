"""SQLite group commit: the jobs of one loop turn are one transaction with a savepoint per
job and one COMMIT (at NORMAL; a claim's batch then waits for an fsync of the log); callers
hear only after the COMMIT.

A batch is made deterministic by starting the calls in one loop turn (``asyncio.gather``):
the store runs everything queued in a turn at its end. COMMITs are counted (and their
synchronous level read, or made to fail) by a spy on the connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from oexec.errors import StoreConflictError, StoreError
from oexec.models import Order
from oexec.store import SqliteStore
from oexec.store.sqlite_db import SqliteDb
from oexec.store.sqlite_loop import JobKind

from .helpers import evolve, make_order

TTL = 3_600
FULL, NORMAL = 2, 1  # PRAGMA synchronous values


class CommitSpy:
    """Stands in for the connection: records the synchronous level at each COMMIT and can
    make the COMMIT fail as a full disk would."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.levels: list[int] = []
        self.fail_commit = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            self.levels.append(int(self.conn.execute("PRAGMA synchronous").fetchone()[0]))
            if self.fail_commit:
                raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def spy_on(db: SqliteDb) -> CommitSpy:
    spy = CommitSpy(db._conn)
    db._conn = spy  # type: ignore[assignment]
    return spy


def db_of(store: SqliteStore) -> SqliteDb:
    assert store._db is not None, "start the store first"
    return store._db


async def one_batch(store: SqliteStore, calls: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run ``calls`` as one batch: started in the same loop turn, the store runs them at
    the end of it together (oexec/store/sqlite_loop.py); their results or exceptions."""
    before = store._runner.batches
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert store._runner.batches == before + 1
    return results


@pytest.fixture
async def store(sqlite_factory: Callable[..., SqliteStore]) -> SqliteStore:
    store = sqlite_factory(update_synchronous="NORMAL")
    await store.start()
    return store


async def test_concurrent_claims_and_saves_land_with_one_commit(store: SqliteStore) -> None:
    claimed = [make_order() for _ in range(20)]
    for order in claimed:
        await store.claim(order, TTL)
    fresh = [make_order() for _ in range(20)]
    commits = db_of(store).commits

    results = await one_batch(
        store,
        [store.save(evolve(order), reason="accepted") for order in claimed]
        + [store.claim(order, TTL) for order in fresh],
    )

    assert db_of(store).commits - commits == 1  # 40 writes, one COMMIT
    assert results[:20] == [None] * 20
    assert all(result.claimed for result in results[20:])
    for order in claimed:
        assert await store.get(order.id) == evolve(order)
    for order in fresh:
        assert await store.get(order.id) == order


async def test_a_claim_in_a_batch_waits_for_an_fsync_and_updates_alone_do_not(
    store: SqliteStore,
) -> None:
    """Commits run at NORMAL on the loop; a batch with a claim (FULL) is answered only
    after the write-ahead log was fsynced off the loop - the same promise as FULL."""
    orders = [make_order() for _ in range(4)]
    for order in orders[:3]:
        await store.claim(order, TTL)
    spy = spy_on(db_of(store))
    fsyncs = store._runner.fsyncs

    await one_batch(store, [store.save(evolve(order), reason="accepted") for order in orders[:3]])
    assert store._runner.fsyncs == fsyncs  # updates alone: NORMAL, no fsync
    await one_batch(
        store,
        [store.save(evolve(evolve(order)), reason="filled") for order in orders[:3]]
        + [store.claim(orders[3], TTL)],
    )
    assert store._runner.fsyncs == fsyncs + 1
    assert spy.levels == [NORMAL, NORMAL]


async def test_many_claims_share_one_fsync(store: SqliteStore) -> None:
    fsyncs = store._runner.fsyncs
    await asyncio.gather(*(store.claim(make_order(), TTL) for _ in range(30)))
    assert store._runner.fsyncs - fsyncs <= 2  # one, or two when the first was in flight


async def test_a_job_that_fails_in_a_batch_fails_alone(store: SqliteStore) -> None:
    taken = make_order()
    await store.claim(taken, TTL)
    first, last = make_order(), make_order()
    duplicate_id = make_order(order_id=taken.id)  # a new request whose order id is taken
    commits = db_of(store).commits

    results = await one_batch(
        store,
        [
            store.claim(first, TTL),
            store.claim(duplicate_id, TTL),
            store.save(evolve(evolve(taken)), reason="skips a version"),
            store.claim(last, TTL),
        ],
    )

    assert results[0].claimed and results[3].claimed
    assert isinstance(results[1], StoreConflictError)
    assert isinstance(results[2], StoreConflictError)
    assert db_of(store).commits - commits == 1
    assert await store.get(first.id) == first
    assert await store.get(last.id) == last
    assert await store.get_by_request_id(duplicate_id.request_id) is None
    assert await store.get(taken.id) == taken


def test_a_job_that_wrote_and_then_raised_is_rolled_back_to_its_savepoint(
    tmp_path: Path,
) -> None:
    db = SqliteDb(str(tmp_path / "o.db"), order_ttl_s=TTL)
    kept, doomed, after = make_order(), make_order(), make_order()

    def claim_then_fail() -> None:
        db.claim(doomed, 60)
        raise ValueError("after its writes")

    jobs: list[tuple[Callable[[], Any], JobKind]] = [
        (lambda: db.claim(kept, 60), "claim"),
        (claim_then_fail, "claim"),
        (lambda: db.claim(after, 60), "claim"),
    ]
    commits = db.commits
    outcomes = db.run_batch(jobs)

    assert [ok for ok, _ in outcomes] == [True, False, True]
    assert isinstance(outcomes[1][1], ValueError)
    assert db.commits - commits == 1
    assert db.get(doomed.id) is None and db.get_by_request_id(doomed.request_id) is None
    assert db.state_history(doomed.id) == []
    assert db.get(kept.id) == kept and db.get(after.id) == after
    db.close()


async def test_a_failed_commit_fails_the_batch_and_stores_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    existing = make_order()
    await store.claim(existing, TTL)
    fresh = make_order()
    spy = spy_on(db_of(store))
    spy.fail_commit = True

    results = await one_batch(
        store,
        [
            store.get(existing.id),  # before any write: its answer stands
            store.claim(fresh, TTL),
            store.save(evolve(existing), reason="accepted"),
            store.get(fresh.id),  # saw the claim that did not land
        ],
    )

    assert results[0] == existing
    for failed in results[1:]:
        assert isinstance(failed, StoreError) and not isinstance(failed, StoreConflictError)
    spy.fail_commit = False
    assert await store.get(fresh.id) is None
    assert await store.get_by_request_id(fresh.request_id) is None
    assert await store.get(existing.id) == existing
    assert len(await store.state_history(existing.id)) == 1
    # and nothing reached the file either
    other = SqliteDb(str(store.path), order_ttl_s=TTL)
    assert other.get(fresh.id) is None
    stored = other.get(existing.id)
    assert isinstance(stored, Order) and stored.version == existing.version
    other.close()
    # the store goes on: the next batch commits
    assert (await store.claim(fresh, TTL)).claimed


async def test_event_numbers_kept_in_memory_follow_a_rolled_back_append(
    store: SqliteStore,
) -> None:
    """The event log's next seq is kept in memory (no read per append); an append whose
    transaction did not land must not leave a hole: the numbers are read again."""
    assert await store.events_append([("fill", b"a", 1), ("order.created", b"b", 1)]) == [
        (1, 1),
        (2, 1),
    ]
    spy = spy_on(db_of(store))
    spy.fail_commit = True
    failed = await one_batch(store, [store.events_append([("fill", b"c", 1)])])
    assert isinstance(failed[0], StoreError)
    spy.fail_commit = False
    assert await store.events_append([("fill", b"d", 1)]) == [(3, 2)]
    rows, _, last = await store.events_read(1, 10)
    assert [(seq, topic, topic_seq) for seq, topic, topic_seq, _ in rows] == [
        (1, "fill", 1),
        (2, "order.created", 1),
        (3, "fill", 2),
    ]
    assert last == 3
