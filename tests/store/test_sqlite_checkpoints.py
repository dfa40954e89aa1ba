"""The SQLite store's write-ahead log stays bounded under sustained writes.

The loop's connection never checkpoints (``wal_autocheckpoint = 0``); the checkpointer
thread does (oexec/store/sqlite_loop.py). With PASSIVE checkpoints alone the log only
started again from its beginning at an idle moment, so sustained writes grew it without
bound (274 MB after 20,000 claims written 64 per loop turn). Now the checkpointer pauses
the batches for a TRUNCATE checkpoint once the log is past ``restart_bytes``, and the
batcher holds them for one when the log is past its limit - so the bound holds whatever
the thread's timing.

Sizes, not timings: the log is measured after every batch of writes.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from oexec.store import SqliteStore
from oexec.store.sqlite_loop import Checkpointer

from .helpers import make_order

TTL = 3_600
THRESHOLD = 128 << 10
RESTART = 256 << 10
LIMIT = 1 << 20
#: One loop turn of 64 claims appends well under this (each touches a few pages of each
#: table and index); the log may pass the limit by the batch that crosses it.
ONE_BATCH = 2 << 20
TURNS = 80  # 5,120 claims: ~70 MB of log without the pauses


def small_store(path: Path) -> SqliteStore:
    """A store whose checkpointer starts at 128 KB, pauses at 256 KB, holds at 1 MB."""
    store = SqliteStore(str(path), synchronous="NORMAL")
    store._checkpointer = Checkpointer(
        str(path),
        writer=store._runner,
        threshold_bytes=THRESHOLD,
        restart_bytes=RESTART,
        wal_limit_bytes=LIMIT,
    )
    return store


def wal_size(path: Path) -> int:
    try:
        return os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        return 0


async def claim_turns(store: SqliteStore, path: Path, turns: int) -> int:
    """``turns`` loop turns of 64 claims each; the largest log seen after a turn."""
    peak = 0
    for turn in range(turns):
        orders = [make_order(turn * 64 + k) for k in range(64)]
        results = await asyncio.gather(*(store.claim(order, TTL) for order in orders))
        assert all(result.claimed for result in results)
        peak = max(peak, wal_size(path))
    return peak


async def test_wal_stays_bounded_under_sustained_writes(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = small_store(path)
    await store.start()
    try:
        peak = await claim_turns(store, path, TURNS)
        assert store._checkpointer.truncations > 0
    finally:
        await store.close()
    assert peak <= LIMIT + ONE_BATCH, f"write-ahead log reached {peak:,} bytes"
    # everything written is in the database
    check = SqliteStore(str(path))
    await check.start()
    try:
        assert len(await check.history(limit=10_000)) == TURNS * 64
    finally:
        await check.close()


async def test_a_reader_on_an_old_snapshot_does_not_stop_the_writes(tmp_path: Path) -> None:
    """A reader of another connection keeps the log from being cut back; the batches are
    held for a checkpoint only once per further limit of growth, so writes go on."""
    path = tmp_path / "store.sqlite"
    store = small_store(path)
    await store.start()
    reader = sqlite3.connect(str(path), isolation_level=None)
    try:
        await claim_turns(store, path, 2)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM orders").fetchone()  # holds its snapshot
        peak = await asyncio.wait_for(claim_turns(store, path, TURNS), timeout=120)
        assert peak > LIMIT + ONE_BATCH  # nothing could be checkpointed past the reader
        held = store._runner.forced_checkpoints
        assert 0 < held <= peak // LIMIT + 1
        reader.execute("COMMIT")
        # the reader gone, the next rounds bring the log back under its bound
        for _ in range(20):
            if await claim_turns(store, path, 1) <= LIMIT + ONE_BATCH:
                break
        assert wal_size(path) <= LIMIT + ONE_BATCH
    finally:
        reader.close()
        await store.close()


async def test_a_stopped_checkpointer_never_holds_the_batches(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = small_store(path)
    await store.start()
    try:
        store._checkpointer.stop()
        await asyncio.wait_for(claim_turns(store, path, 30), timeout=120)
        assert store._runner.forced_checkpoints == 0
    finally:
        await store.close()
