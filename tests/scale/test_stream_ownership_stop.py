"""StreamOwnership.stop ends the lease loop even when one cancellation is lost in it.

Seen as a ``Daemon.stop() hung`` teardown of the unknown-cancel e2e test (Redis, under
load): the stop's single cancel of the lease task landed in ``Membership.beat``, whose
Redis write redis-py runs in ``asyncio.wait_for``; on Python 3.11 that returns the inner
result when the write completes in the same loop turn as the cancel, so the cancel was
lost, the lease loop went on (and led again), and the stop awaited it forever. Here the
heartbeat drops the first cancellation the same way, deterministically.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from oexec.cluster import StreamOwnership
from oexec.config import ClusterConfig, Config
from oexec.service.lease import RedisLease

#: A bound on a stop that would otherwise hang; the stop itself takes well under 1 s.
HANG_S = 30


async def test_stop_ends_the_lease_task_when_a_heartbeat_drops_the_cancel(
    redis: aioredis.Redis, prefix: str
) -> None:
    cluster = ClusterConfig(key_prefix=prefix, instance_id="one", lease_renew_s=0.05)
    job_started = asyncio.Event()

    async def job(_lease: RedisLease) -> None:
        job_started.set()
        await asyncio.Future()  # follows the stream until cancelled

    owner = StreamOwnership(Config(cluster=cluster), redis, prefix, job)
    armed, in_beat = asyncio.Event(), asyncio.Event()
    dropped: list[int] = []
    beat = owner.members.beat

    async def beat_dropping_one_cancel() -> None:
        await beat()
        if not armed.is_set():
            return
        in_beat.set()
        try:
            await asyncio.Future()  # the Redis write, held until the stop's cancel comes
        except asyncio.CancelledError:
            if not dropped:  # what asyncio.wait_for on 3.11 can do: carry on
                dropped.append(1)
                return
            raise

    owner.runner._heartbeat = beat_dropping_one_cancel
    owner.start()
    lease_task = owner._task
    assert lease_task is not None
    async with asyncio.timeout(HANG_S):
        await job_started.wait()
        armed.set()
        await in_beat.wait()  # the lease task is in its heartbeat now
    # a task of its own: a stop hanging in ``await task`` would swallow a timeout's cancel
    stopping = asyncio.create_task(owner.stop())
    done, _ = await asyncio.wait({stopping, lease_task}, timeout=HANG_S)
    if stopping not in done:  # the old stop: leave nothing running behind the test
        stopping.cancel()
        lease_task.cancel()
    assert stopping in done and lease_task in done, "stop() hung on the lease task"
    assert dropped == [1]  # the first cancel was lost, and the stop still ended
    assert not owner.leading
    assert await redis.get(owner.lease.key) is None  # released at once for a standby
