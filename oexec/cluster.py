"""Shared or local: what the composition root builds when daemons share one Redis.

With a Redis store every ``[cluster]`` switch (oexec/config.py) picks the shared
implementation: the Redis-side rate limiter, the shared breaker, one event sequence on
the Redis Stream, and a lease so that one daemon consumes the user stream. With SQLite
(or a switch off) the local one, as for a single daemon. docs/deployment.md says what
each topology guarantees. Kept out of app.py so the daemon's wiring stays one page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import redis.asyncio as aioredis

from oexec.breaker import VenueBreaker
from oexec.breaker.shared import SharedVenueBreaker
from oexec.config import Config
from oexec.events.publisher import ZmqEventSink
from oexec.events.sequence import SharedSequenceSink
from oexec.limits import VenueRateLimiter
from oexec.limits.shared import SharedRateLimiter
from oexec.service.lease import (
    LeaderRunner,
    Membership,
    RedisLease,
    default_instance_id,
    fenced,
)
from oexec.service.tracking import Tracking
from oexec.store import REDIS_SCHEMES
from oexec.store.keys import ClusterKeys
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


def stream_ownership(
    config: Config, redis: aioredis.Redis | None, prefix: str, tracking: Tracking
) -> StreamOwnership | None:
    """The lease over tracking (user stream, polls, orphan sweep), or None when alone:
    ``tracking`` leads while this daemon holds the lease and stands by otherwise."""
    if redis is None or not config.cluster.stream_lease:
        return None

    def release_key() -> bool:
        return owner.release_key_on_stop

    async def job(lease: RedisLease) -> None:
        await tracking.lead(lambda events: fenced(events, lease), release_key)

    owner = StreamOwnership(config, redis, prefix, job, on_change=tracking.on_leadership)
    tracking.on_leadership(False)  # every daemon starts as a standby
    owner.background = lambda: tracking.standby_fill_checks(lambda: owner.leading)
    return owner


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
        keys = ClusterKeys(prefix)
        self.instance = cluster.instance_id or default_instance_id()
        self.lease = RedisLease(redis, keys.stream_lease, self.instance, ttl_s=cluster.lease_ttl_s)
        self.members = Membership(redis, keys.members, self.instance, ttl_s=cluster.lease_ttl_s)
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
        # cancelled until they end (oexec/tasks.py): one cancel can be lost in a Redis call
        # of the lease task (redis-py writes each command in asyncio.wait_for, which on
        # Python 3.11 drops a cancel arriving as the write completes); the lease loop then
        # went on - took the lease again - and stop() waited for it forever
        await cancel_and_wait([t for t in (self._background, self._task) if t is not None])
        self._task = self._background = None
        await self.members.leave()


def now_ms() -> int:
    return int(time.time() * 1000)


__all__ = [
    "StreamOwnership",
    "attach_nats",
    "is_shared",
    "rate_gate",
    "shared_event_sink",
    "shared_redis",
    "stream_ownership",
    "venue_breaker",
]
