"""What only the Redis backend promises: TTLs, typed errors when Redis is gone, and
atomic claims across separate daemons (separate pools) sharing one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from oexec.errors import ErrorCode, StoreError
from oexec.models import OrderState
from oexec.store import RedisStore
from oexec.store.keys import Keys
from oexec.store.redis_connect import parse_sentinel_url

from ..ports import free_port
from .helpers import evolve, make_fill, make_order

TTL = 3_600


async def test_every_key_gets_its_ttl(
    redis_factory: Callable[..., RedisStore], redis_client: aioredis.Redis
) -> None:
    store = redis_factory(order_ttl_s=1_000_000)
    keys = store.keys
    order = make_order()
    await store.claim(order, TTL)
    await store.save(evolve(order, state=OrderState.NEW))
    await store.save_reply(order.request_id, b"reply", 600)
    await store.add_fill(make_fill(order, 5))

    async def ttl(key: str) -> int:
        return int(await redis_client.ttl(key))

    assert 3_590 <= await ttl(keys.idempotency(order.request_id)) <= TTL
    assert 590 <= await ttl(keys.reply(order.request_id)) <= 600
    for key in (
        keys.order(order.id),
        keys.client_order_id(order.client_order_id),
        keys.states(order.id),
        keys.fill(order.symbol, 5),
        keys.fills(order.id),
    ):
        assert 999_000 <= await ttl(key) <= 1_000_000, key


async def test_default_ttls_are_thirty_days_and_one_day(
    redis_factory: Callable[..., RedisStore], redis_client: aioredis.Redis
) -> None:
    store = redis_factory()
    order = make_order()
    await store.claim(order, 86_400)
    assert 86_300 < await redis_client.ttl(store.keys.idempotency(order.request_id)) <= 86_400
    order_ttl = await redis_client.ttl(store.keys.order(order.id))
    assert 30 * 86_400 - 100 < order_ttl <= 30 * 86_400


async def test_two_daemons_race_claims_with_one_winner_per_request(
    redis_factory: Callable[..., RedisStore],
) -> None:
    """Two stores = two pools, as two `oexec run` processes on one Redis."""
    a, b = redis_factory(), redis_factory()
    request_ids = [f"shared-{i}" for i in range(20)]
    attempts = [
        store.claim(make_order(request_id=rid), TTL)
        for rid in request_ids
        for store in (a, b, a, b)
    ]
    results = await asyncio.gather(*attempts)
    for rid in request_ids:
        mine = [r for r in results if r.order.request_id == rid]
        assert sum(r.claimed for r in mine) == 1
        assert len({r.order.id for r in mine}) == 1
    assert len(await a.history(limit=100)) == 20
    assert len(await b.open_orders()) == 20


async def test_other_daemon_sees_saves_and_conflicts(
    redis_factory: Callable[..., RedisStore],
) -> None:
    a, b = redis_factory(), redis_factory()
    order = make_order()
    await a.claim(order, TTL)
    await b.save(evolve(order, state=OrderState.NEW))
    with pytest.raises(StoreError) as info:
        await a.save(evolve(order, state=OrderState.CANCELED))
    assert info.value.code is ErrorCode.STORE_CONFLICT


async def test_expired_orders_drop_out_of_the_indexes(
    redis_factory: Callable[..., RedisStore], redis_client: aioredis.Redis
) -> None:
    store = redis_factory()
    gone, kept = make_order(1), make_order(2)
    await store.claim(gone, TTL)
    await store.claim(kept, TTL)
    await redis_client.delete(store.keys.order(gone.id))  # as if its TTL ran out
    assert [o.id for o in await store.open_orders()] == [kept.id]
    assert await store.open_order_count() == 1
    assert [o.id for o in await store.history()] == [kept.id]
    assert not await redis_client.sismember(store.keys.open(), gone.id)
    assert await redis_client.zscore(store.keys.history(), gone.id) is None


async def test_claim_whose_order_vanished_is_a_store_error(
    redis_factory: Callable[..., RedisStore], redis_client: aioredis.Redis
) -> None:
    store = redis_factory()
    order = make_order(request_id="r-orphan")
    await store.claim(order, TTL)
    await redis_client.delete(store.keys.order(order.id))
    with pytest.raises(StoreError) as info:
        await store.claim(make_order(request_id="r-orphan"), TTL)
    assert info.value.code is ErrorCode.STORE_UNAVAILABLE


async def test_a_new_claim_after_expiry_clears_a_stale_reply(
    redis_factory: Callable[..., RedisStore], redis_client: aioredis.Redis
) -> None:
    store = redis_factory()
    first = make_order(request_id="r-again")
    await store.claim(first, TTL)
    await store.save_reply("r-again", b"old", TTL)
    await redis_client.delete(store.keys.idempotency("r-again"))  # claim TTL ran out
    second = make_order(request_id="r-again")
    assert (await store.claim(second, TTL)).claimed
    assert await store.get_reply("r-again") is None
    assert await store.get_by_request_id("r-again") == second


async def test_unreachable_redis_raises_store_unavailable_on_every_call() -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    order = make_order()
    calls = [
        store.start(),
        store.claim(order, TTL),
        store.save(order),
        store.release(order),
        store.save_reply("r", b"x", TTL),
        store.get_reply("r"),
        store.get(order.id),
        store.get_by_request_id("r"),
        store.get_by_client_order_id("c"),
        store.open_orders(),
        store.open_order_count("BTCUSDT"),
        store.history(),
        store.state_history(order.id),
        store.add_fill(make_fill(order, 1)),
        store.fills(order.id),
    ]
    try:
        for call in calls:
            with pytest.raises(StoreError) as info:
                await call
            assert info.value.code is ErrorCode.STORE_UNAVAILABLE
            assert isinstance(info.value.__cause__, Exception)
    finally:
        await store.close()


async def test_keys_live_under_the_prefix() -> None:
    keys = Keys("p:")
    built = [
        keys.order("1"),
        keys.idempotency("r"),
        keys.reply("r"),
        keys.client_order_id("c"),
        keys.open(),
        keys.open("S"),
        keys.history(),
        keys.history("S"),
        keys.states("1"),
        keys.fill("S", 1),
        keys.fills("1"),
    ]
    assert all(k.startswith("p:") for k in built)
    assert len(set(built)) == len(built)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+sentinel://h1:26379/mymaster", ([("h1", 26379)], "mymaster", 0, None)),
        (
            "redis+sentinel://:s3cret@h1:1,h2:2/svc/3",
            ([("h1", 1), ("h2", 2)], "svc", 3, "s3cret"),
        ),
    ],
)
def test_sentinel_urls_parse(url: str, expected: object) -> None:
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    "url", ["redis+sentinel://h1:26379/", "redis+sentinel://h1:x/svc", "redis+sentinel://:1/s"]
)
def test_bad_sentinel_urls_are_store_errors(url: str) -> None:
    with pytest.raises(StoreError):
        parse_sentinel_url(url)


async def test_sentinel_url_builds_a_client_without_connecting() -> None:
    store = RedisStore.from_url(f"redis+sentinel://127.0.0.1:{free_port()}/svc", timeout_s=0.3)
    try:
        with pytest.raises(StoreError):
            await store.ping()
    finally:
        await store.close()
