"""Shared or local: what the composition root builds when daemons share one Redis.

With a Redis store every ``[cluster]`` switch (oexec/config.py) picks the shared
implementation: the Redis-side rate limiter, the shared breaker, one event sequence on
the Redis Stream, and a lease so that one daemon consumes the user stream. With SQLite
(or a switch off) the local one, as for a single daemon. docs/deployment.md says what
each topology guarantees. Kept out of app.py so the daemon's wiring stays one page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import redis.asyncio as aioredis

from oexec.breaker import VenueBreaker
from oexec.breaker.shared import SharedVenueBreaker
from oexec.config import Config
from oexec.errors import OexecError
from oexec.events.publisher import ZmqEventSink
from oexec.events.sequence import SharedSequenceSink
from oexec.limits import VenueRateLimiter
from oexec.limits.shared import SharedRateLimiter
from oexec.models import Order, OrderState
from oexec.service.lease import (
    LeaderRunner,
    Membership,
    RedisLease,
    default_instance_id,
    fenced,
)
from oexec.service.ports import UserStream
from oexec.store import REDIS_SCHEMES
from oexec.store.redis_connect import connect
from oexec.tasks import cancel_and_wait

log = logging.getLogger("oexec.cluster")


def is_shared(config: Config) -> bool:
    return config.store.url.strip().startswith(REDIS_SCHEMES)


def shared_redis(config: Config) -> aioredis.Redis | None:
    """The client the shared parts use (Sentinel URLs too); None when not on Redis."""
    if not is_shared(config):
        return None
    return connect(
        config.store.url.strip(),
        timeout_s=config.store.redis_timeout_s,
        max_connections=config.store.redis_max_connections,
    )


def rate_gate(
    config: Config, redis: aioredis.Redis | None, prefix: str, stack: AsyncExitStack
) -> VenueRateLimiter | SharedRateLimiter:
    local = VenueRateLimiter(config.limits)
    if redis is None or not config.cluster.shared_limits:
        return local
    shared = SharedRateLimiter(local, redis, prefix=prefix)
    stack.push_async_callback(shared.close)
    return shared


def venue_breaker(
    config: Config,
    redis: aioredis.Redis | None,
    prefix: str,
    on_state_change: Callable[[str, str], None],
    stack: AsyncExitStack,
) -> VenueBreaker:
    if redis is None or not config.cluster.shared_breaker:
        return VenueBreaker(config.breaker, on_state_change=on_state_change)
    breaker = SharedVenueBreaker(
        config.breaker,
        redis,
        prefix=prefix,
        sync_s=config.cluster.breaker_sync_s,
        on_state_change=on_state_change,
    )
    breaker.start()
    stack.push_async_callback(breaker.close)
    return breaker


def shared_event_sink(
    config: Config, redis: aioredis.Redis | None, prefix: str
) -> ZmqEventSink | None:
    """The shared-sequence sink, or None when the daemon numbers its own events."""
    if redis is None or not config.cluster.shared_sequence or not config.events.redis_stream:
        return None
    return SharedSequenceSink(
        config.events.publish,
        redis=redis,
        prefix=prefix,
        maxlen=config.events.stream_maxlen,
        retention_s=config.events.retention_s,
        curve=config.front,
    )


async def attach_nats(config: Config, sink: ZmqEventSink, stack: AsyncExitStack) -> Any:
    """Mirror ``sink``'s events to JetStream when ``[nats] url`` is set."""
    if not config.nats.url:
        return None
    from oexec.events.nats_sink import NatsEventSink  # nats-py: the optional [nats] extra

    # the message id's prefix: the event log's epoch (seq is unique within it across
    # restarts and daemons, issue 17); a daemon without a log: its run
    nats_sink = NatsEventSink(config.nats, src=lambda: getattr(sink, "epoch", "") or sink.src)
    await nats_sink.start()
    stack.push_async_callback(nats_sink.close)
    sink.taps.append(nats_sink.offer)
    return nats_sink


def orphaned(order: Order, now_ms: int, not_found_grace_ms: int) -> bool:
    """A submit nobody may be resolving: SUBMITTING/UNKNOWN past the venue's not-found
    grace (its daemon may have died). Resolving it twice is harmless."""
    return (
        order.state in (OrderState.SUBMITTING, OrderState.UNKNOWN)
        and now_ms - order.created_at > not_found_grace_ms
    )


def stream_ownership(
    config: Config, redis: aioredis.Redis | None, daemon: Any
) -> StreamOwnership | None:
    """The lease over tracking (user stream, polls, orphan sweep), or None when alone."""
    if redis is None or not config.cluster.stream_lease:
        return None
    owner: StreamOwnership | None = None

    async def job(lease: RedisLease) -> None:
        assert owner is not None
        await lead_tracking(config, daemon, lease, owner)

    def on_change(leading: bool) -> None:
        # A standby is not "down": another daemon tracks. A new leader does not know
        # what happened meanwhile, like after a long disconnect (full reconciliation).
        tracker = daemon.tracker
        long_gap_s = float(getattr(tracker, "long_gap_s", 0.0))
        tracker.down_since = time.monotonic() - long_gap_s if leading else None

    owner = StreamOwnership(config, redis, daemon.store_prefix, job, on_change=on_change)
    on_change(False)  # every daemon starts as a standby
    owner.background = lambda: standby_fill_checks(config, daemon, owner)
    return owner


async def standby_fill_checks(config: Config, daemon: Any, owner: StreamOwnership) -> None:
    """A standby still fetches the trades of its own orders that filled in a REST reply
    (the writer listener queues them per daemon; the leader's ``watch`` does its own)."""
    while True:
        await asyncio.sleep(config.tracking.poll_interval_s)
        if not owner.leading:
            with contextlib.suppress(OexecError):
                await daemon.tracker.check_fills()


async def reconcile_at_takeover(daemon: Any) -> None:
    """A new owner does not know what the last one missed: reconcile everything once
    (orphaned submits, open orders, fills of recently filled orders, foreign orders)."""
    reconciler = getattr(daemon, "reconciler", None)
    if reconciler is not None:
        with contextlib.suppress(OexecError):
            await reconciler.run()


async def lead_tracking(
    config: Config, daemon: Any, lease: RedisLease, owner: StreamOwnership
) -> None:
    """What the lease holder does: consume the user stream (each event fenced), poll
    and sweep (``OrderTracker.watch``), and resolve submits orphaned by a dead daemon."""
    tracker = daemon.tracker
    loop = asyncio.get_running_loop()
    helpers = [
        loop.create_task(tracker.watch(stream_enabled=config.tracking.user_stream)),
        loop.create_task(sweep_orphans(config, daemon)),
        loop.create_task(reconcile_at_takeover(daemon)),
    ]
    stream: UserStream | None = None
    try:
        open_stream = daemon.venue_kit.user_stream
        if not config.tracking.user_stream or open_stream is None:
            await asyncio.Future()  # poll only, until the lease ends
        stream = open_stream(tracker.on_stream_state)
        await tracker.run(fenced(stream.events(), lease))
    finally:
        await cancel_and_wait(helpers)
        tracker.stream_up = False
        if stream is not None:
            await stream.close(release_key=owner.release_key_on_stop)


async def sweep_orphans(config: Config, daemon: Any, interval_s: float = 2.0) -> None:
    while True:
        with contextlib.suppress(OexecError):
            for order in await daemon.store.open_orders(None):
                if orphaned(order, now_ms(), daemon.venue_kit.policy.not_found_grace_ms):
                    daemon.resolver.resolve_in_background(order, order.created_at)
        await asyncio.sleep(interval_s)


class StreamOwnership:
    """Runs the user-stream job only while this daemon holds the lease.

    ``job`` consumes the stream (and polls while it is down) until cancelled; it gets
    the lease so it can fence each event. ``on_stop_last`` runs at shutdown when no
    other daemon is alive (the one moment the shared listen key may be closed).
    """

    def __init__(
        self,
        config: Config,
        redis: aioredis.Redis,
        prefix: str,
        job: Callable[[RedisLease], Coroutine[Any, Any, None]],
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        cluster = config.cluster
        self.instance = cluster.instance_id or default_instance_id()
        self.lease = RedisLease(
            redis, f"{prefix}userstream:lease", self.instance, ttl_s=cluster.lease_ttl_s
        )
        self.members = Membership(
            redis, f"{prefix}members", self.instance, ttl_s=cluster.lease_ttl_s
        )
        self.runner = LeaderRunner(
            self.lease,
            lambda _token: job(self.lease),
            renew_s=cluster.lease_renew_s,
            on_change=on_change,
            heartbeat=self.members.beat,
        )
        self._task: asyncio.Task[None] | None = None
        self.release_key_on_stop = False  # set at stop when no other daemon is alive
        self.background: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._background: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return self.runner.leading

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self.runner.run(), name="lease")
        if self.background is not None:
            self._background = loop.create_task(self.background(), name="standby")

    async def stop(self) -> None:
        """Stop, releasing the lease at once (a standby takes over within ``renew_s``).

        The shared listen key is closed only by the last daemon of the deployment.
        """
        try:
            self.release_key_on_stop = await self.members.others_alive() == 0
        except Exception:  # Redis away: others may run, keep the key
            self.release_key_on_stop = False
        for task in (self._background, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._background = None
        await self.members.leave()


def now_ms() -> int:
    return int(time.time() * 1000)


__all__ = [
    "StreamOwnership",
    "attach_nats",
    "is_shared",
    "orphaned",
    "rate_gate",
    "shared_event_sink",
    "shared_redis",
    "stream_ownership",
    "venue_breaker",
]
