"""SQLite's two durability levels: claims fsynced (FULL), later writes NORMAL.

Behaviour a test can see: the synchronous level each kind of write commits at, and that
a NORMAL write is kept when the process dies right after it returned (no close, no
checkpoint): survival of a process crash is what NORMAL promises.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oexec.store.sqlite_db import SqliteDb

from .helpers import evolve, make_order

FULL, NORMAL = 2, 1  # PRAGMA synchronous values


def level(db: SqliteDb) -> int:
    return int(db._conn.execute("PRAGMA synchronous").fetchone()[0])


def test_claims_commit_full_and_updates_normal(tmp_path: Path) -> None:
    db = SqliteDb(str(tmp_path / "o.db"), order_ttl_s=3600, update_synchronous="NORMAL")
    order = make_order()
    db.claim(order, 60)
    assert level(db) == FULL
    db.save(evolve(order), "venue accepted")
    db.save_reply(order.request_id, b"reply", 60)
    assert level(db) == NORMAL
    db.release(make_order())  # a release is a claim-level write too
    assert level(db) == FULL
    db.close()


def test_without_update_level_every_write_keeps_the_claim_level(tmp_path: Path) -> None:
    db = SqliteDb(str(tmp_path / "o.db"), order_ttl_s=3600)
    order = make_order()
    db.claim(order, 60)
    db.save(evolve(order), "venue accepted")
    assert level(db) == FULL
    db.close()


@pytest.mark.timeout(60)
def test_a_normal_write_survives_the_process_dying_right_after_it(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.store.helpers import evolve, make_order
        from oexec.store.sqlite_db import SqliteDb
        db = SqliteDb({str(path)!r}, order_ttl_s=3600, update_synchronous="NORMAL")
        order = make_order(order_id="ord-crash", request_id="req-crash")
        db.claim(order, 60)
        db.save(evolve(order), "venue accepted")
        os._exit(0)  # no close, no checkpoint
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=50)
    db = SqliteDb(str(path), order_ttl_s=3600)
    stored = db.get("ord-crash")
    assert stored is not None and stored.version == 2
    db.close()
