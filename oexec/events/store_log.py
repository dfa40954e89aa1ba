"""The embedded store's event sink: the sequence and its copies in the SQLite file.

LoggedSequenceSink (oexec/events/logged.py) over the store's event log
(oexec/store/sqlite_events.py): each batch of events is one store call that numbers
and keeps them, riding the store thread's group commit with the order writes, before
the events go on PUB. ``epoch`` is the log's id, kept in the file.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from oexec.config import FrontConfig
from oexec.events.logged import (
    DEFAULT_RETENTION_EVENTS,
    DEFAULT_RETENTION_S,
    LoggedSequenceSink,
    LogRow,
)


class EventLogStore(Protocol):
    """What the sink needs of the store (SqliteStore has it)."""

    async def events_open(self) -> tuple[int, str]: ...

    async def events_append(
        self, batch: Sequence[tuple[str, bytes, int]]
    ) -> list[tuple[int, int]]: ...

    async def events_read(
        self, from_seq: int, limit: int
    ) -> tuple[list[tuple[int, str, int, bytes]], int, int]: ...

    async def events_trim(self, older_than_ms: int, max_events: int) -> int: ...


class StoreSequenceSink(LoggedSequenceSink):
    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        store: EventLogStore | Any,
        retention_s: float = DEFAULT_RETENTION_S,
        retention_events: int = DEFAULT_RETENTION_EVENTS,
        buffer_size: int = 10_000,
        flush_timeout_s: float = 5.0,
        curve: FrontConfig | None = None,
    ) -> None:
        super().__init__(
            endpoints,
            retention_s=retention_s,
            retention_events=retention_events,
            buffer_size=buffer_size,
            flush_timeout_s=flush_timeout_s,
            curve=curve,
        )
        self._store: EventLogStore = store

    async def _open_log(self) -> tuple[int, str]:
        return await self._store.events_open()

    async def _append_once(self, batch: Sequence[tuple[int, str, bytes]]) -> list[tuple[int, int]]:
        stamp = int(time.time() * 1000)
        return await self._store.events_append([(topic, data, stamp) for _, topic, data in batch])

    async def _read_log(self, from_seq: int, limit: int) -> tuple[list[LogRow], int, int]:
        return await self._store.events_read(from_seq, limit)

    async def _trim_log(self, older_than_ms: int, max_events: int) -> int:
        return await self._store.events_trim(older_than_ms, max_events)
