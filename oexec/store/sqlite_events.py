"""The embedded store's event log: one sequence that survives restarts, and replay.

Why (issue 17). A daemon on SQLite numbered its events in memory: after a restart it
counted from 1 again, and the events its outbox redelivered at start went out as "seq
1-4 of a new run" before any subscriber had reconnected; nobody could tell what was
missed, and nothing could be asked for again. Here every event is appended to the
store file *before* it goes on PUB, in one transaction per batch that also assigns its
``seq`` and ``topic_seq`` (so both continue across restarts), and is kept for the
retention window for the ``replay`` op.

Tables (created with the store's schema):

- ``events``: ``seq`` (primary key), ``topic``, ``topic_seq``, ``stamp`` (ms, when
  appended: what the retention window is measured on), ``data`` (the packed event map
  without ``seq``/``topic_seq``, exactly as the Redis Stream keeps it).
- ``event_state``: ``seq`` (the numbers' checkpoint: see below), ``trimmed_through`` (the
  highest ``seq`` ever trimmed: a replay from at or below it is refused as expired),
  ``epoch`` (this log's id: a new epoch means the sequence started again, the file was
  replaced).
- ``event_topic_seqs``: each topic's last ``topic_seq`` as of the checkpoint.

The numbers are not written with each append (that was two more statements per batch
and one per topic in it, ~5 per order on the sync bench row). The events themselves
say where the sequence stands: the last ``seq`` and each topic's last ``topic_seq`` are
those of the checkpoint (``event_state.seq`` and ``event_topic_seqs``) advanced by the
events logged after it. Only a trim deletes events, and a trim (once a minute) first
writes the checkpoint of the numbers as they stand, in its own transaction: whatever it
deletes is then covered by the checkpoint, every event after the checkpoint is still
there, and a reopen reads about a minute of events to find the numbers.

Plain functions on a connection inside the caller's transaction; ``SqliteDb`` opens it.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import attrs

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    topic_seq INTEGER NOT NULL,
    stamp INTEGER NOT NULL,
    data BLOB NOT NULL
);
DROP INDEX IF EXISTS events_stamp;
CREATE TABLE IF NOT EXISTS event_state (
    name TEXT PRIMARY KEY,
    value
);
CREATE TABLE IF NOT EXISTS event_topic_seqs (
    topic TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
"""

#: (topic, packed event without seq/topic_seq, stamp ms)
Appended = tuple[str, bytes, int]
#: (seq, topic, topic_seq, data)
Row = tuple[int, str, int, bytes]


def _state(db: sqlite3.Connection, name: str) -> Any:
    row = db.execute("SELECT value FROM event_state WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def _set_state(db: sqlite3.Connection, name: str, value: object) -> None:
    db.execute("INSERT OR REPLACE INTO event_state (name, value) VALUES (?, ?)", (name, value))


def open_log(db: sqlite3.Connection) -> tuple[int, str]:
    """(last assigned seq, epoch); creates the epoch on first use. In a write transaction."""
    epoch = _state(db, "epoch")
    if epoch is None:
        epoch = uuid.uuid4().hex[:16]
        _set_state(db, "epoch", epoch)
    return last_seq(db), str(epoch)


@attrs.define
class Numbers:
    """The last ``seq`` and each topic's last ``topic_seq`` as stored: what the next append
    continues from. Kept in memory by the one process appending (the daemon owns its
    file), so an append reads nothing; dropped whenever a transaction rolls back."""

    seq: int
    topics: dict[str, int]


def last_seq(db: sqlite3.Connection) -> int:
    """The last assigned seq: the newest event's, or the checkpoint's if every event since
    it was trimmed."""
    newest = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    return max(int(_state(db, "seq") or 0), int(newest or 0))


def load_numbers(db: sqlite3.Connection) -> Numbers:
    """The numbers as stored: the checkpoint advanced by the events logged after it."""
    checkpoint = int(_state(db, "seq") or 0)
    topics = {str(t): int(n) for t, n in db.execute("SELECT topic, last FROM event_topic_seqs")}
    later = db.execute(
        "SELECT topic, MAX(topic_seq) FROM events WHERE seq > ? GROUP BY topic", (checkpoint,)
    ).fetchall()
    for topic, last in later:
        topics[str(topic)] = max(topics.get(str(topic), 0), int(last))
    return Numbers(seq=last_seq(db), topics=topics)


def checkpoint(db: sqlite3.Connection, numbers: Numbers) -> None:
    """Store ``numbers`` as the checkpoint (before a trim deletes the events they end at)."""
    db.executemany(
        "INSERT OR REPLACE INTO event_topic_seqs (topic, last) VALUES (?, ?)",
        list(numbers.topics.items()),
    )
    _set_state(db, "seq", numbers.seq)


def append(
    db: sqlite3.Connection, batch: Sequence[Appended], known: Numbers | None = None
) -> tuple[list[tuple[int, int]], Numbers]:
    """Assign the next ``seq`` and ``topic_seq`` to each event, store it; returns them and
    the numbers now stored (``known``: the numbers as stored, else read from ``db``). One
    INSERT per event and nothing else: the events carry the numbers (see the module doc)."""
    start = known if known is not None else load_numbers(db)
    seq, topics = start.seq, dict(start.topics)
    numbers: list[tuple[int, int]] = []
    rows: list[tuple[int, str, int, int, bytes]] = []
    for topic, data, stamp in batch:
        seq += 1
        topic_seq = topics[topic] = topics.get(topic, 0) + 1
        numbers.append((seq, topic_seq))
        rows.append((seq, topic, topic_seq, stamp, data))
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
    return numbers, Numbers(seq=seq, topics=topics)


def read(db: sqlite3.Connection, from_seq: int, limit: int) -> tuple[list[Row], int, int]:
    """(up to ``limit`` events with seq >= ``from_seq`` in order, trimmed_through, last seq)."""
    rows = db.execute(
        "SELECT seq, topic, topic_seq, data FROM events WHERE seq >= ? ORDER BY seq LIMIT ?",
        (from_seq, limit),
    ).fetchall()
    trimmed = int(_state(db, "trimmed_through") or 0)
    return [(int(r[0]), str(r[1]), int(r[2]), bytes(r[3])) for r in rows], trimmed, last_seq(db)


def trim(
    db: sqlite3.Connection, older_than_ms: int, max_events: int, known: Numbers | None = None
) -> int:
    """Delete events stamped before ``older_than_ms`` and all but the newest
    ``max_events``; remember the highest seq deleted. Returns how many went. The numbers
    are checkpointed first (``known``: as stored, else read), so none are lost with the
    events deleted - at every trim (once a minute), so that a reopen reads only the
    events of the last minute or so to find where the numbers stand."""
    numbers = known if known is not None else load_numbers(db)
    checkpoint(db, numbers)
    last = numbers.seq
    # The first young event in seq order: a scan from the oldest that stops there, so it
    # reads about what the trim deletes (no index on stamp to keep up on every append).
    young = db.execute(
        "SELECT seq FROM events WHERE stamp >= ? ORDER BY seq LIMIT 1", (older_than_ms,)
    ).fetchone()
    # every event older than the window when none is young
    floor = last + 1 if young is None else int(young[0])
    keep_from = max(last - max_events + 1, 1, floor)
    gone = db.execute("DELETE FROM events WHERE seq < ?", (keep_from,)).rowcount
    if gone:
        trimmed = int(_state(db, "trimmed_through") or 0)
        _set_state(db, "trimmed_through", max(trimmed, keep_from - 1))
    return int(gone)
