"""The whole daemon loses its Redis and gets it back (docs/deployment.md, "Redis
unreachable"): typed STORE_UNAVAILABLE answers within the store timeout, /health 503,
no order at the venue without a durable claim, then service again and a store that
agrees with the venue — including a fill the venue made while Redis was gone.

Redis is a redis-server of the test's own (own port and directory, never 6379) with
``appendonly yes`` + ``appendfsync always`` (tests/reliability/procs.RedisServer), so a
SIGKILL loses no acknowledged write: what the daemon stored before the kill is there
after the restart. The daemon uses the production topology for a Redis store: shared
limiter, breaker, event sequence and user-stream lease all in that Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from oexec.client import AsyncClient, ClientError
from oexec.config import StoreConfig, TrackingConfig
from oexec.errors import ErrorCode
from oexec.models import OrderState
from oexec.service.client_ids import client_order_id_for
from oexec.service.reconcile import compare

from ..operations.scrape import until_health
from ..reliability.procs import RedisServer
from ..tracking.helpers import EventLog, limit, wait_for
from .conftest import DaemonFactory, SimControl, endpoint, events_endpoint

STORE_TIMEOUT_S = 0.5
#: A request may wait for: the store timeout per store call, the client's own deadline.
REPLY_BOUND_S = 8.0


@pytest.fixture
def store_kind() -> str:
    return "sqlite"  # make_daemon's store is replaced by the test's own Redis below


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    server.start()
    yield server
    server.stop()


async def _refused(coro: Any) -> ClientError:
    """The typed error a request gets, within a bound (no hang while Redis is down)."""
    async with asyncio.timeout(REPLY_BOUND_S):
        with pytest.raises(ClientError) as info:
            await coro
    return info.value


async def _at_venue(control: SimControl, client_order_id: str) -> list[dict[str, Any]]:
    return [o for o in await control.orders() if o["clientOrderId"] == client_order_id]


async def test_redis_killed_and_restarted_under_a_running_daemon(
    make_daemon: DaemonFactory, control: SimControl, own_redis: RedisServer
) -> None:
    daemon = await make_daemon(
        store=StoreConfig(url=own_redis.url, redis_timeout_s=STORE_TIMEOUT_S),
        tracking=TrackingConfig(poll_interval_s=0.3, sweep_interval_s=1.0),
    )
    log = EventLog()
    collector = asyncio.create_task(log.collect(events_endpoint(daemon)))
    await asyncio.sleep(0.3)  # ZeroMQ slow joiner
    async with (
        aiohttp.ClientSession() as http,
        AsyncClient(endpoint(daemon), timeout_s=5.0, retries=0) as client,
    ):
        resting = await client.place_order(**limit("rl-rest", "49500.0"))
        assert resting.state is OrderState.NEW
        accepted_before = (await control.stats())["orders_accepted"]

        own_redis.kill()  # SIGKILL: no goodbye, connections reset

        down = await _refused(client.place_order(**limit("rl-down", "49000.0")))
        assert down.code is ErrorCode.STORE_UNAVAILABLE, down
        again = await _refused(client.place_order(**limit("rl-down", "49000.0")))
        assert again.code is ErrorCode.STORE_UNAVAILABLE, again
        lookup = await _refused(client.get_order(order_id=resting.id))
        assert lookup.code is ErrorCode.STORE_UNAVAILABLE, lookup
        cancel = await _refused(client.cancel_order(order_id=resting.id))
        assert cancel.code is ErrorCode.STORE_UNAVAILABLE, cancel
        body = await until_health(http, daemon.http_url, 503)
        assert body["checks"]["store"].startswith("unhealthy"), body

        # No claim, no order: the venue saw nothing of rl-down, and the cancel that could
        # not be recorded was not sent either.
        assert await _at_venue(control, client_order_id_for("rl-down")) == []
        assert (await control.stats())["orders_accepted"] == accepted_before
        (rest_truth,) = await _at_venue(control, resting.client_order_id)
        assert rest_truth["status"] == "NEW"

        # The venue moves on while the store is gone: the resting order fills.
        await control.price("BTCUSDT", "49400.0")
        (rest_truth,) = await _at_venue(control, resting.client_order_id)
        assert rest_truth["status"] == "FILLED"
        await asyncio.sleep(1.0)  # stream events and polls hit the dead store meanwhile
        assert daemon.ready  # still serving typed errors, not crashed

        own_redis.start()  # same port and directory: the AOF brings the data back
        await until_health(http, daemon.http_url, 200, within_s=20)

        placed = await wait_for(lambda: _place_when_served(client, "rl-down"), within_s=20)
        assert placed.state is OrderState.NEW
        assert len(await _at_venue(control, client_order_id_for("rl-down"))) == 1

        filled = await wait_for(
            lambda: _in_state(client, resting.id, OrderState.FILLED), within_s=20
        )
        assert filled.filled_quantity == resting.quantity
        differences: list[Any] = []

        async def agree() -> bool:
            differences[:] = await compare(daemon.store, daemon.venue, history_limit=100)
            return not differences

        await wait_for(agree, within_s=20)
        await asyncio.sleep(0.5)  # the event appender may be draining its back-off queue
    collector.cancel()

    truth_fills = {
        (o["symbol"], int(f["tradeId"])) for o in await control.orders() for f in o["fills"]
    }
    assert truth_fills and set(log.fills_by_trade()) == truth_fills
    assert set(log.fills_by_trade().values()) == {1}  # each fill published once
    assert log.topic_by_order("order.filled") == {resting.id: 1}
    venue_coids = [o["clientOrderId"] for o in await control.orders()]
    assert len(venue_coids) == len(set(venue_coids)) == 2  # rl-rest and rl-down, once each


async def _place_when_served(client: AsyncClient, request_id: str) -> Any:
    """The same request_id again until the daemon serves it (the retry a strategy does)."""
    try:
        return await client.place_order(**limit(request_id, "49000.0"))
    except ClientError as exc:
        if exc.code is ErrorCode.STORE_UNAVAILABLE:
            return None
        raise


async def _in_state(client: AsyncClient, order_id: str, state: OrderState) -> Any:
    order = await client.get_order(order_id=order_id)
    return order if order.state is state else None


async def test_after_a_redis_restart_one_failed_call_clears_every_stale_pooled_connection(
    own_redis: RedisServer,
) -> None:
    """Idle pooled connections all point at the killed server: the first failure drops
    them, so after the restart no request fails on one of them."""
    from oexec.errors import StoreError
    from oexec.store import RedisStore

    store = RedisStore.from_url(own_redis.url, timeout_s=STORE_TIMEOUT_S)
    try:
        await asyncio.gather(*(store.get(f"warm-{n}") for n in range(8)))  # 8 pooled
        own_redis.kill()
        with pytest.raises(StoreError):
            await store.get("while-down")
        own_redis.start()
        results = await asyncio.gather(
            *(store.get(f"after-{n}") for n in range(8)), return_exceptions=True
        )
        assert results == [None] * 8
    finally:
        await store.close()
