"""Stopping background tasks so that a stop can never hang on one of them.

Why. ``task.cancel()`` then ``await task`` hangs forever when the task swallows the
cancellation and carries on (a library catching ``CancelledError`` in its cleanup, or
``asyncio.wait_for`` in Python 3.11, which returns its inner result when that completes
in the same loop iteration as the cancel). Seen here as a ``Daemon.stop`` that hung in
tests with the tracker's poll loop still sleeping. ``cancel_and_wait`` cancels again
until the task ends, and gives up (logged) after a bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("oexec.tasks")

RECANCEL_S = 0.5
GIVE_UP_S = 10.0


async def cancel_and_wait(
    tasks: Iterable[asyncio.Future[Any]],
    *,
    recancel_s: float = RECANCEL_S,
    give_up_s: float = GIVE_UP_S,
) -> None:
    """Cancel ``tasks`` and wait until every one has ended (their results and errors
    are dropped); a task still running ``recancel_s`` later is cancelled again."""
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_s
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=recancel_s)
        if pending and loop.time() >= deadline:
            log.error("tasks ignored cancellation for %.0fs: %s", give_up_s, pending)
            return
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" warning
