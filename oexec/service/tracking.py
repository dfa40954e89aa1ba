"""Following every order to its end, as one unit: the tracker (stream events, polls,
sweeps, fills), the reconciler and the user-stream runner.

Why a unit: the daemon runs it alone, or — with daemons sharing one Redis — only while
it holds the stream lease, and both ways are the same parts in the same order. The
composition root and the cluster lead it through these methods; nobody sets the
tracker's state from outside (it owns ``stream_up``/``down_since``):

- ``reconcile_at_start``: before serving, square the store with the venue;
- ``run_alone``: one daemon: the stream (when the venue has one and it is enabled) and
  the tracker's poll/sweep loop, until cancelled;
- ``lead``: the lease holder: the same, each stream event fenced by the lease, plus the
  sweep of submits orphaned by a dead daemon and one full reconciliation at takeover;
- ``on_leadership``: a standby is not "down"; a new leader reconciles in full;
- ``standby_fill_checks``: a standby still fetches the trades of its own REST fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from oexec.errors import OexecError
from oexec.models import Order, OrderState
from oexec.service.ports import OrderStore, UserStream, UserStreamFactory
from oexec.service.reconcile import Reconciler
from oexec.service.resolver import UnknownOutcomeResolver
from oexec.service.tracker import OrderTracker
from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.tracking")

#: Wraps the stream's events (the lease's fence: stop before an event it may not apply).
Fence = Callable[[AsyncIterator[Any]], AsyncIterator[Any]]
ORPHAN_SWEEP_S = 2.0


def orphaned(order: Order, now_ms: int, not_found_grace_ms: int) -> bool:
    """A submit nobody may be resolving: SUBMITTING/UNKNOWN past the venue's not-found
    grace (its daemon may have died). Resolving it twice is harmless."""
    return (
        order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN)
        and now_ms - order.created_at > not_found_grace_ms
    )


class Tracking:
    def __init__(
        self,
        *,
        tracker: OrderTracker,
        reconciler: Reconciler,
        resolver: UnknownOutcomeResolver,
        store: OrderStore,
        open_stream: UserStreamFactory | None,
        stream_enabled: bool,
        not_found_grace_ms: int,
        poll_interval_s: float,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.tracker = tracker
        self.reconciler = reconciler
        self.resolver = resolver
        self.store = store
        self.open_stream = open_stream if stream_enabled else None
        self.stream_enabled = stream_enabled
        self.not_found_grace_ms = not_found_grace_ms
        self.poll_interval_s = poll_interval_s
        self.now_ms = now_ms

    # -- what the daemon reads ----------------------------------------------------------------
    @property
    def stream_up(self) -> bool:
        return self.tracker.stream_up

    @property
    def down_since(self) -> float | None:
        return self.tracker.down_since

    # -- one daemon -----------------------------------------------------------------------------
    async def reconcile_at_start(self) -> None:
        """Resolve every order the store thinks is live against the venue before serving
        (unknown submits, missed changes and fills, venue orders the store lacks)."""
        try:
            await self.reconciler.run(at_start=True)
        except OexecError as exc:  # the venue is down: the tracker retries it each poll
            log.warning("reconciliation at start incomplete: %s", exc.message)
            self.tracker.owe_reconciliation()

    async def run_alone(self) -> None:
        """The stream (if any) and the poll/sweep loop, until cancelled."""
        helpers = [asyncio.get_running_loop().create_task(self._watch())]
        try:
            await self._follow_stream(None, release_key=lambda: False)
        finally:
            await cancel_and_wait(helpers)

    # -- the lease holder of a cluster ----------------------------------------------------------
    async def lead(self, fence: Fence, release_key: Callable[[], bool]) -> None:
        """What the lease holder does, until cancelled (the lease ended): follow the stream
        with each event fenced, poll and sweep, resolve submits orphaned by a dead daemon,
        and reconcile everything once (a new owner does not know what the last missed)."""
        loop = asyncio.get_running_loop()
        helpers = [
            loop.create_task(self._watch()),
            loop.create_task(self._sweep_orphans()),
            loop.create_task(self._reconcile_at_takeover()),
        ]
        try:
            await self._follow_stream(fence, release_key=release_key)
        finally:
            await cancel_and_wait(helpers)

    def on_leadership(self, leading: bool) -> None:
        if leading:
            self.tracker.take_over()
        else:
            self.tracker.stand_by()

    async def standby_fill_checks(self, leading: Callable[[], bool]) -> None:
        """A standby still fetches the trades of its own orders that filled in a REST
        reply (the writer listener queues them per daemon; the leader's watch does its)."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if not leading():
                with contextlib.suppress(OexecError):
                    await self.tracker.check_fills()

    # -- parts ----------------------------------------------------------------------------------
    async def _watch(self) -> None:
        await self.tracker.watch(stream_enabled=self.stream_enabled)

    async def _follow_stream(self, fence: Fence | None, release_key: Callable[[], bool]) -> None:
        if self.open_stream is None:
            await asyncio.Future()  # poll only, until cancelled
        assert self.open_stream is not None
        stream: UserStream = self.open_stream(self.tracker.on_stream_state)
        try:
            events: AsyncIterator[Any] = stream.events()
            await self.tracker.run(events if fence is None else fence(events))
        finally:
            self.tracker.stream_stopped()
            await stream.close(release_key=release_key())

    async def _sweep_orphans(self) -> None:
        while True:
            with contextlib.suppress(OexecError):
                for order in await self.store.open_orders(None):
                    if orphaned(order, self.now_ms(), self.not_found_grace_ms):
                        self.resolver.resolve_in_background(order, order.created_at)
            await asyncio.sleep(ORPHAN_SWEEP_S)

    async def _reconcile_at_takeover(self) -> None:
        with contextlib.suppress(OexecError):
            await self.reconciler.run()
