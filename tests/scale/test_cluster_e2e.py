"""Three daemons, one Redis, one simulator: shared limits, atomic idempotency, one stream
consumer, one gap-free event sequence (issue 8). All in this process; the SIGKILL
fail-over with subprocess daemons is in test_failover_e2e.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import pytest

from oexec.app import Daemon
from oexec.client import AsyncClient, ClientError, StreamReplay, StreamSubscriber, Subscriber
from oexec.config import ClusterConfig
from oexec.sim.config import RateLimitConfig

from ..e2e.conftest import REDIS_URL, DaemonFactory, SimControl, endpoint, events_endpoint
from .conftest import eventually

LOW_LIMITS = RateLimitConfig(orders_per_10s=20, orders_per_minute=60)
FAST_LEASE = ClusterConfig(lease_ttl_s=1.0, lease_renew_s=0.2)


def resting(request_id: str, price: str = "45000.0") -> dict[str, str]:
    return dict(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price=price,
        time_in_force="GTC",
        request_id=request_id,
    )


async def burst(daemons: list[Daemon], total: int, waves: int, pause_s: float) -> Counter[str]:
    """``total`` orders in ``waves`` waves, round-robin over the daemons."""
    outcomes: Counter[str] = Counter()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(AsyncClient(endpoint(d))) for d in daemons]

        async def one(n: int) -> None:
            try:
                await clients[n % len(clients)].place_order(**resting(f"burst-{n}"))
                outcomes["ok"] += 1
            except ClientError as exc:
                outcomes[str(exc.code)] += 1

        per_wave = total // waves
        for wave in range(waves):
            await asyncio.gather(*(one(wave * per_wave + i) for i in range(per_wave)))
            await asyncio.sleep(pause_s)
    return outcomes


def venue_429s(stats: dict[str, Any]) -> int:
    by_status = stats["responses_by_status"]
    return int(by_status.get("429", 0)) + int(by_status.get("418", 0))


@pytest.mark.sim_config(rate_limits=LOW_LIMITS)
async def test_burst_of_ten_times_the_limit_over_three_daemons_gets_no_429(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemons = [await make_daemon() for _ in range(3)]
    started = time.monotonic()
    outcomes = await burst(daemons, total=200, waves=4, pause_s=1.5)
    elapsed = time.monotonic() - started
    stats = await control.stats()
    assert venue_429s(stats) == 0, stats["responses_by_status"]
    assert set(outcomes) <= {"ok", "RATE_LIMITED"}, outcomes
    assert outcomes["ok"] >= 4 and outcomes["RATE_LIMITED"] >= 150, outcomes
    assert len(await control.orders()) == outcomes["ok"]
    # all three together sent what ONE bucket allows (limit 16 = 20 x 0.8: burst 4, then
    # 1.2/s), not three times that
    assert outcomes["ok"] <= 4 + 1.2 * elapsed + 1, (outcomes, elapsed)


async def test_duplicate_request_ids_over_three_daemons_give_one_venue_order_each(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemons = [await make_daemon() for _ in range(3)]
    ids = [f"dup-{n}" for n in range(20)]
    replies: dict[str, list[str]] = {rid: [] for rid in ids}
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(AsyncClient(endpoint(d))) for d in daemons]

        async def send(client: AsyncClient, rid: str) -> None:
            order = await client.place_order(**resting(rid))
            replies[rid].append(order.id)

        # every request_id to every daemon, twice, all at once
        await asyncio.gather(*(send(c, rid) for rid in ids for c in clients * 2))
    for rid, order_ids in replies.items():
        assert len(order_ids) == 6 and len(set(order_ids)) == 1, (rid, order_ids)
    truth = await control.orders()
    assert len(truth) == len(ids)
    assert len({o["clientOrderId"] for o in truth}) == len(ids)


async def test_one_daemon_consumes_the_user_stream_and_a_standby_takes_over(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemons = [await make_daemon(cluster=FAST_LEASE) for _ in range(3)]

    async def one_leader() -> bool:
        return sum(d.stream_owner is not None and d.stream_owner.leading for d in daemons) == 1

    await eventually(one_leader, what="one lease holder")
    leader = next(d for d in daemons if d.stream_owner and d.stream_owner.leading)
    tokens = {leader.stream_owner.lease.token if leader.stream_owner else 0}
    await eventually(lambda: _stream_connections(control, 1), what="one user-stream connection")
    await leader.stop()  # a clean stop releases the lease at once
    rest = [d for d in daemons if d is not leader]
    await eventually(
        lambda: _any_leads(rest), timeout_s=FAST_LEASE.lease_ttl_s * 3, what="fail-over"
    )
    new = next(d for d in rest if d.stream_owner and d.stream_owner.leading)
    assert new.stream_owner is not None and new.stream_owner.lease.token not in tokens
    # fills placed through the standby arrive once, via the new owner's stream
    async with AsyncClient(endpoint(next(d for d in rest if d is not new))) as client:
        orders = [
            await client.place_order(
                symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010", request_id=f"m{n}"
            )
            for n in range(3)
        ]
    truth = {o["clientOrderId"]: o for o in await control.orders()}

    async def fills_recorded() -> bool:
        for order in orders:
            fills = await new.store.fills(order.id)
            if len(fills) != len(truth[order.client_order_id]["fills"]):
                return False
        return True

    await eventually(fills_recorded, what="every fill recorded")
    for order in orders:
        fills = await new.store.fills(order.id)
        assert sorted(f.trade_id for f in fills) == sorted(
            int(f["tradeId"]) for f in truth[order.client_order_id]["fills"]
        )


async def _stream_connections(control: SimControl, n: int) -> bool:
    return int((await control.stats())["stream_connections"]) == n


async def _any_leads(daemons: list[Daemon]) -> bool:
    return any(d.stream_owner is not None and d.stream_owner.leading for d in daemons)


async def test_subscriber_that_drops_off_replays_the_gap_exactly_once_in_sequence(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemons = [await make_daemon() for _ in range(2)]
    key = f"{daemons[0].store_prefix}events"
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(AsyncClient(endpoint(d))) for d in daemons]

        async def place(names: range) -> None:
            await asyncio.gather(*(clients[n % 2].place_order(**resting(f"ev-{n}")) for n in names))

        seen: list[int] = []
        async with StreamSubscriber(REDIS_URL, key, block_ms=200) as sub:
            await place(range(0, 6))
            while len(seen) < 6:
                seen.append((await sub.receive()).seq)
        # dropped off: the daemons go on without this subscriber
        await place(range(6, 16))
        for client in clients:  # and cancel a few, for more than one topic
            await client.cancel_order(request_id="ev-7")
        top = await _stream_top(daemons[0], key)
        async with StreamSubscriber(REDIS_URL, key, from_seq=seen[-1], block_ms=200) as sub:
            while not seen or seen[-1] < top:
                event = await sub.receive()
                assert event.gap is None
                seen.append(event.seq)
    assert seen == list(range(1, top + 1))  # every event exactly once, in sequence
    # and the daemons' own PUB sockets carried the same numbers (each its share)
    assert {d.events.last_seq for d in daemons} <= set(range(1, top + 1))


async def _stream_top(daemon: Daemon, key: str) -> int:
    async def flushed() -> bool:
        return all(d.events._queue.empty() for d in [daemon])  # type: ignore[attr-defined]

    await eventually(flushed, what="events appended")
    await asyncio.sleep(0.1)
    assert daemon.redis is not None
    entries: Any = await daemon.redis.xrevrange(key, count=1)
    return int(entries[0][0].decode().split("-")[0])


async def test_pub_subscriber_fills_gaps_from_the_stream(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    """One daemon's PUB carries only its events; ``replay`` fills in the others'."""
    a, b = [await make_daemon() for _ in range(2)]
    key = f"{a.store_prefix}events"
    replay = StreamReplay(REDIS_URL, key)
    got: list[int] = []
    with Subscriber(events_endpoint(a), replay=replay, from_seq=0) as sub:
        await asyncio.sleep(0.3)  # ZeroMQ slow joiner
        async with AsyncClient(endpoint(a)) as ca, AsyncClient(endpoint(b)) as cb:
            await cb.place_order(**resting("b-1"))  # only on b's PUB
            await cb.place_order(**resting("b-2"))
            await ca.place_order(**resting("a-1"))  # reveals the gap on a's PUB
        while len(got) < 3:
            event = await asyncio.wait_for(sub.receive(), 5)
            assert event.gap is None
            got.append(event.seq)
    await replay.close()
    assert got == [1, 2, 3]
