"""The tracking unit (oexec/service/tracking.py): the cluster and the daemon lead the
tracker through it; the tracker alone changes its stream state (issue 15)."""

from __future__ import annotations

import asyncio
import time

from oexec.config import VenueConfig
from oexec.models.venue import StreamGap
from oexec.service.market import MarketState
from oexec.service.reconcile import Reconciler
from oexec.service.resolver import ResolverPolicy, UnknownOutcomeResolver
from oexec.service.tracker import OrderTracker
from oexec.service.tracking import Tracking
from oexec.service.writer import OrderWriter
from oexec.tasks import cancel_and_wait
from oexec.venue import open_venue

from ..service.fakes import MemoryStore, RecordingSink

LONG_GAP_S = 60.0


async def _unit() -> tuple[Tracking, list[str]]:
    kit = await open_venue(VenueConfig(name="memory"))
    store, calls = MemoryStore(), []
    writer = OrderWriter(store, RecordingSink())
    resolver = UnknownOutcomeResolver(kit.venue, writer, ResolverPolicy())

    async def reconcile() -> None:
        calls.append("reconcile")

    tracker = OrderTracker(
        store,
        kit.venue,
        writer,
        MarketState(kit.venue.mark_price),
        long_gap_s=LONG_GAP_S,
        poll_interval_s=0.05,
        on_long_gap=reconcile,
    )
    reconciler = Reconciler(store, kit.venue, writer, tracker, resolver)
    tracking = Tracking(
        tracker=tracker,
        reconciler=reconciler,
        resolver=resolver,
        store=store,
        open_stream=kit.user_stream,
        stream_enabled=True,
        not_found_grace_ms=kit.policy.not_found_grace_ms,
        poll_interval_s=0.05,
    )
    return tracking, calls


async def test_a_standby_is_not_down_and_a_new_leader_reconciles_in_full() -> None:
    tracking, calls = await _unit()
    tracking.on_leadership(False)
    assert tracking.down_since is None and not tracking.stream_up
    tracking.on_leadership(True)
    down_since = tracking.down_since
    assert down_since is not None and time.monotonic() - down_since >= LONG_GAP_S
    await tracking.tracker.on_gap(StreamGap("reconnected", 0))  # its stream connects
    assert calls == ["reconcile"] and tracking.stream_up and tracking.down_since is None


async def test_run_alone_follows_the_stream_until_cancelled() -> None:
    tracking, _ = await _unit()
    running = asyncio.get_running_loop().create_task(tracking.run_alone())
    for _ in range(200):
        if tracking.stream_up:
            break
        await asyncio.sleep(0.01)
    assert tracking.stream_up
    await cancel_and_wait([running])
    assert not tracking.stream_up  # the runner says the stream stopped
